package experiment

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
)

// Variant is one arm of a split: a name and a weight (the arms' weights
// are relative: 50/50, 90/10 and 1/1 all mean what they look like).
type Variant struct {
	Name   string `json:"name"`
	Weight int    `json:"weight"`
}

// Bucket places a contact uniformly in [0, 1) for one purpose, named by
// salt (an experiment, a journey's holdout, the workspace control group).
// It is a hash, not a random draw: the same contact and salt always land
// in the same place, on every worker and after every restart or re-entry,
// with no state to keep; different salts are independent of each other,
// so a contact's holdout membership says nothing about its variant.
//
// The hash is part of the data: changing it would move contacts between
// the arms of running experiments. TestBucket_isStable pins it.
func Bucket(salt, contactID string) float64 {
	h := sha256.New()
	h.Write([]byte("tutti/bucket\x00"))
	h.Write([]byte(salt))
	h.Write([]byte{0})
	h.Write([]byte(contactID))
	var sum [sha256.Size]byte
	// 53 bits: every value is an exact float64 in [0, 1).
	return float64(binary.BigEndian.Uint64(h.Sum(sum[:0]))>>11) / (1 << 53)
}

// ExperimentSalt names a journey's experiment for Bucket. It leaves out the
// journey version on purpose: a contact keeps its arm when the journey is
// republished and when it re-enters.
func ExperimentSalt(journeyID, experiment string) string {
	return "experiment\x00" + journeyID + "\x00" + experiment
}

// HoldoutSalt names a journey's holdout for Bucket.
func HoldoutSalt(journeyID string) string { return "holdout\x00" + journeyID }

// ControlGroupSalt names the workspace-wide control group for Bucket.
const ControlGroupSalt = "control-group"

// ValidateVariants checks a split's arms: at least two, named, unique,
// with positive weights.
func ValidateVariants(variants []Variant) error {
	if len(variants) < 2 {
		return errors.New("a split needs at least two variants")
	}
	seen := map[string]bool{}
	for i, v := range variants {
		switch {
		case v.Name == "":
			return fmt.Errorf("variants[%d].name: required", i)
		case seen[v.Name]:
			return fmt.Errorf("variants[%d].name: %q appears twice", i, v.Name)
		case v.Weight <= 0:
			return fmt.Errorf("variants[%d].weight: must be a positive integer, got %d", i, v.Weight)
		}
		seen[v.Name] = true
	}
	return nil
}

// Assign returns the arm a contact is in, by its bucket for salt and the
// arms' weights in order.
func Assign(salt, contactID string, variants []Variant) (string, error) {
	if err := ValidateVariants(variants); err != nil {
		return "", err
	}
	total := 0
	for _, v := range variants {
		total += v.Weight
	}
	at := Bucket(salt, contactID) * float64(total)
	acc := 0
	for _, v := range variants {
		acc += v.Weight
		if at < float64(acc) {
			return v.Name, nil
		}
	}
	return variants[len(variants)-1].Name, nil // unreachable: at < total
}

// Held reports whether a contact falls in a share (0 to 1) set aside for
// salt: a journey's holdout or the workspace control group.
func Held(salt, contactID string, share float64) bool {
	return share > 0 && Bucket(salt, contactID) < share
}
