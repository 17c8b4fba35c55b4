package dataset

// GeneratorVersion names what the generators make of a definition: the
// rows, and the values in them, that Load copies for a spec, a seed and a
// scale. Digest mixes it in, so that a cache of seeded states keyed on the
// digest drops its entries when the generators change. Bump it with any
// change to generate.go or load.go that changes a generated value, a row
// count or the order of rows; TestGeneratorGolden fails until it is bumped
// (and its pinned hash updated), and TestGeneratorSources fails on any edit
// of either file until its source hash is pinned again.
//
// "2": restore order loads into the tables the schema's search_path names
// (it could load into a same-named table of another schema), and schemas
// whose rows depend on the order of loading (shared sequences, volatile
// defaults, triggers) load in place again.
//
// "3": every connection of a restore-order load sets what the schema SET
// for its session (a default reading TimeZone or an app.* setting got the
// server's value, or failed, on the other connections).
const GeneratorVersion = "3"
