package preflight

// CheckSQL checks one SQL migration file: the lock each statement takes
// and the hazards that follow; malformed SQL is a parse-error finding.
// (Scaffolding: the SQL rules helper replaces this file.)
func CheckSQL(file string, src []byte) []Finding { return nil }
