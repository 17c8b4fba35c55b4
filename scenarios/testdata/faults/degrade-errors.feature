Feature: Degrading what cannot be degraded

  Background:
    Given the environment "compose.yaml"

  Scenario: A disk that was never declared
    When the disk of "a" is full

  Scenario: Restoring a network that was never degraded
    When the network between "a" and "c" is restored
