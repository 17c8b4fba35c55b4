Feature: Faults are healed whatever ends the scenario

  Background:
    Given the environment "compose.yaml"
    And the upgrade package "pkg"
    And the package may be applied unsigned
    And "a" is probed every 200ms
    When "b" is paused for 5m during step "prepare"
    And the network between "a" and "c" is cut
    And the upgrade package is applied to "a" as "root"
    And "c" is killed during step "migrate"

  Scenario: A step fails mid-fault
    Then the upgrade fails at step "migrate"
    When "a" is killed
    Then "a" stays available

  Scenario: A step panics mid-fault
    When the test step panics
