// Package invariants says whether expensive whole-state checks run: with `-tags invariants`
// or `-race` (as in CI) they do; in production builds they don't.
package invariants
