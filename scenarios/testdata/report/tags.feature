@feature-tag
Feature: Tags at every level

  @plain @slow
  Scenario: A tagged scenario
    Given the step "plain"

  Scenario: An untagged scenario
    Given the step "untagged"

  @outline
  Scenario Outline: An outline row <n>
    Given the step "row <n>"

    Examples: small
      | n |
      | 1 |
      | 2 |

    @big @slow
    Examples: big
      | n |
      | 3 |

  @rule-tag
  Rule: A tagged rule

    Scenario: A scenario in the rule
      Given the step "in rule"

    @wip
    Scenario Outline: An outline in the rule <n>
      Given the step "rule row <n>"

      @nightly
      Examples:
        | n |
        | 4 |

  Rule: An untagged rule

    @slow
    Scenario: A slow scenario in an untagged rule
      Given the step "slow in rule"
