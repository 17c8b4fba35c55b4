Feature: Vendor signatures across the CA rotation
  The vendor rotated its root CA last quarter: billing 3.0 is signed by a key
  issued under the new root. We trust only the old root; the vendor hands
  out a chain in which the old root certifies the new one.

  Background:
    Given the upgrade package "../out/packages/billing-3.0-rehearsed.zip"

  Scenario: With only the old root, the new chain leads nowhere
    Given the trust store "../out/pki/old-root.pem"
    Then the package signature is rejected as "unknown-authority"

  Scenario: The old root and the vendor's cross-signed chain
    Given the trust store "../out/pki/old-root.pem"
    And the vendor chain "../out/pki/cross-chain.pem"
    Then the package signature is trusted

  Scenario: Trusting the new root directly
    Given the trust store "../out/pki/new-root.pem"
    Then the package signature is trusted

  Scenario: A copy changed after signing
    Given the upgrade package "../out/packages/billing-3.0-tampered.zip"
    And the trust store "../out/pki/new-root.pem"
    Then the package signature is rejected as "bad-signature"
