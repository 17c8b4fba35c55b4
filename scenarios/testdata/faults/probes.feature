Feature: Faults seen by probes

  Every outage assertion here could fail: each scenario starts its own
  environment and probes, so an outage can only be the doing of the step
  before it, and the outages of a probe count from its first good answer.

  Background:
    Given the environment "compose.yaml"

  Scenario: Kill, pause, stop, start, restart and a cut
    Given "a" is probed every 200ms
    And "b" is probed every 500ms
    And "c" is probed every 200ms
    Then "a" stays available
    And "b" stays available
    And "c" stays available
    # the cut drops packets between a and b only: the host still reaches both
    When the network between "a" and "b" is cut for 500ms
    Then "a" stays available
    And "b" stays available
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
    # a was down for about a second of the several it has been probed: were
    # it still paused, its availability would be far lower
    Then the availability of "a" is at least 50%

  Scenario: A kill armed for an upgrade step fires during that step
    Given "b" is probed every 500ms
    And the upgrade package "pkg"
    And the package may be applied unsigned
    Then "b" stays available
    When "b" is killed during step "migrate"
    And the upgrade package is applied to "a" as "root"
    # migrate fetches from b: it fails only because b was killed
    Then the upgrade fails at step "migrate"
    And "b" had an outage
    And the downtime of "b" is within the promised window

  Scenario: A kill armed some time into a step fires while that step runs on
    Given "b" is probed every 250ms
    And the upgrade package "pkg-slow"
    And the package may be applied unsigned
    Then "b" stays available
    When "b" is killed 1s into step "wait"
    And the upgrade package is applied to "a" as "root"
    # wait (a sleep) is not disturbed; verify needs b, killed meanwhile
    Then the upgrade fails at step "verify"
    And "b" had an outage
