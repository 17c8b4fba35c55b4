Feature: Faults seen by probes

  Background:
    Given the environment "compose.yaml"

  Scenario: Kill, pause, stop, start, restart and a kill during an upgrade step
    Given "a" is probed every 200ms
    And "b" is probed every 500ms
    And "c" is probed every 200ms
    Then "a" stays available
    And "c" stays available
    When "a" is paused for 1s
    Then "a" had an outage
    And no outage of "a" lasts longer than 10s
    And the downtime of "a" is within 10s
    And "c" stays available
    When "c" is killed
    Then "c" had an outage
    When "c" is started
    And "b" is stopped
    Then "b" had an outage
    When "b" is started
    And "b" is restarted
    And the network between "a" and "b" is cut for 500ms
    Then the availability of "a" is at least 10%
    # a kill armed for an upgrade step fails the step that needs the service
    Given the upgrade package "pkg"
    And the package may be applied unsigned
    When "b" is killed during step "migrate"
    And the upgrade package is applied to "a" as "root"
    Then the upgrade fails at step "migrate"
    And "b" had an outage
    And the downtime of "b" is within the promised window
