//go:build invariants || race

package invariants

// Enabled is true: whole-state invariant checks run after every batch.
const Enabled = true
