@feature-tag
Feature: Selecting scenarios by line
  A description of the feature.

  Background:
    Given the step "background"

  @plain @second-tag
  Scenario: A plain scenario with a docstring
    A description of the scenario.
    Given the step "plain"
    And the text:
      """
      Scenario: not a scenario, a docstring line
      @not-a-tag
      """

  # a comment between scenarios

  Scenario Outline: An outline row <n>
    Given the step "row <n>"
    And the table:
      | key | value |
      | n   | <n>   |

    Examples: small
      | n |
      | 1 |
      # a comment inside a table
      | 2 |

    @big
    Examples: big
      | n |
      | 3 |

  Scenario: A scenario without steps

  @rule-tag
  Rule: A rule with its own background
    Background:
      Given the step "rule background"

    Scenario: A scenario in a rule
      Given the step "in rule"

    Scenario Outline: An outline in a rule <n>
      Given the step "rule row <n>"

      Examples:
        | n |
        | 4 |
        | 5 |
