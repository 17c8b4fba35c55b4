package scenarios

import (
	"fmt"
	"strings"
)

// The tag filter below is a port of godog's (internal/tags/tag_filter.go of
// github.com/cucumber/godog v0.16.0, MIT License, Copyright (c) SmartBear
// Software and the godog contributors), which godog keeps internal. Select
// applies it before sharding, so it must match exactly what godog would
// run: the same syntax and the same quirks. Only CheckTags is new: godog
// panics on an empty term ("@a && ", "@a,"); rehearse says so instead.

// MatchTags reports whether a scenario with tags (with or without their @)
// matches a godog tag expression: terms joined by "," (or) of terms joined
// by "&&" (and), each a tag or "~" and a tag (not), such as
// "@smoke && ~@slow" or "@a,@b". Every "@" is ignored. An empty expression
// matches everything.
func MatchTags(filters string, tags []string) bool {
	if filters == "" {
		return true
	}
	ok := false
	for _, filter := range strings.Split(filters, ",") {
		ok = matchAnd(filter, tags) || ok
	}
	return ok
}

func matchAnd(filter string, tags []string) bool {
	and := len(filter) > 0
	for _, tag := range strings.Split(filter, "&&") {
		tag = strings.TrimSpace(tag)
		tag = strings.ReplaceAll(tag, "@", "")
		if tag == "" { // godog indexes tag[0] here and panics; CheckTags refuses it first
			return false
		}
		if tag[0] == '~' {
			tag = tag[1:]
			and = !containsTag(tags, tag) && and
		} else {
			and = containsTag(tags, tag) && and
		}
	}
	return and
}

func containsTag(tags []string, tag string) bool {
	for _, t := range tags {
		if strings.ReplaceAll(t, "@", "") == tag {
			return true
		}
	}
	return false
}

// CheckTags refuses a tag expression with an empty term, on which godog's
// filter would panic: "@a && ", "@a,", "&&".
func CheckTags(filters string) error {
	if filters == "" {
		return nil
	}
	for _, filter := range strings.Split(filters, ",") {
		for _, tag := range strings.Split(filter, "&&") {
			if strings.ReplaceAll(strings.TrimSpace(tag), "@", "") == "" {
				return fmt.Errorf("tags %q: an empty tag between \",\" or \"&&\" (want an expression such as \"@smoke && ~@slow\" or \"@a,@b\")", filters)
			}
		}
	}
	return nil
}
