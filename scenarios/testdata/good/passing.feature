Feature: A passing scenario next to broken ones

  @smoke
  Scenario: Commands run in the sandbox
    Given the environment "../world/compose.yaml"
    When I run "echo 'hello from \"box\"'" in service "box"
    Then the command succeeds
    And the output contains "hello from \"box\""
    When I run "id -un" in service "box" as "nobody"
    Then the output contains "nobody"
    When I run "exit 3" in service "box"
    Then the command fails
    And the command exits with code 3
