Feature: A scenario without steps

  @todo
  Scenario: Nothing written yet

  Scenario: A step that needs nothing
    Given the package may be applied unsigned
