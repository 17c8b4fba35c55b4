package dataset

// GeneratorVersion names what the generators make of a definition: the
// rows, and the values in them, that Load copies for a spec, a seed and a
// scale. Digest mixes it in, so that a cache of seeded states keyed on the
// digest drops its entries when the generators change. Bump it with any
// change to generate.go or load.go that changes a generated value, a row
// count or the order of rows; TestGeneratorGolden fails until it is bumped
// (and its pinned hash updated), and TestGeneratorSources fails on any edit
// of either file until its source hash is pinned again.
const GeneratorVersion = "1"
