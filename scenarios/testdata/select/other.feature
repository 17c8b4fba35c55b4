Feature: Another file

  Scenario: The only scenario of another file
    Given the step "other"
