Feature: Failures are located by godog's AST node ids

  Background:
    Given the number 2 is even

  Scenario: A plain scenario fails at its step
    Given the number 4 is even
    And the number 5 is even

  Scenario Outline: The second example fails
    Given the number <n> is even

    Examples:
      | n |
      | 6 |
      | 7 |
      | 8 |

  Rule: Rules have backgrounds too

    Background:
      Given the number 9 is even

    Scenario: A rule's background fails
      Given the number 10 is even
