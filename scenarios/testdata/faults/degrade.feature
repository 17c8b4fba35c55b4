Feature: Latency, bandwidth and a full disk

  Background:
    Given the environment "compose.yaml"

  Scenario: Only the named client is slowed, and the disk fills and empties
    When 1500ms latency is added between "a" and "b"
    And I run "/usr/local/bin/node -get http://b:8080/ -timeout 1s" in service "a"
    Then the command fails
    And the output contains "deadline exceeded"
    When I run "/usr/local/bin/node -get http://b:8080/ -timeout 1s" in service "c"
    Then the command succeeds
    When the network between "a" and "b" is restored
    And I run "/usr/local/bin/node -get http://b:8080/ -timeout 1s" in service "a"
    Then the command succeeds
    When the bandwidth between "a" and "b" is limited to 2KB/s
    And I run "/usr/local/bin/node -get http://b:8080/bytes/20000 -timeout 2s" in service "a"
    Then the command fails
    When I run "/usr/local/bin/node -get http://b:8080/bytes/20000 -timeout 2s" in service "c"
    Then the command succeeds
    When the network between "b" and "a" is restored
    And I run "/usr/local/bin/node -get http://b:8080/bytes/20000 -timeout 2s" in service "a"
    Then the command succeeds
    When I run "echo kept > /data/kept" in service "b"
    Then the command succeeds
    When the disk of "b" is full
    And I run "dd if=/dev/zero of=/data/more bs=4k count=1" in service "b"
    Then the command fails
    And the output contains "No space left on device"
    When the disk of "b" has room again
    And I run "dd if=/dev/zero of=/data/more bs=4k count=1 && cat /data/kept" in service "b"
    Then the command succeeds
    And the output contains "kept"
