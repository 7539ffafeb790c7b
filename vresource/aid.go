package vresource

import (
	"fmt"
	"strconv"
)

// AID identifies one application chain: every process of one application,
// however many times it is checkpointed and restored.  AIDs start at 1 and
// are never reused, so 0 never names a chain.
type AID uint64

func (a AID) String() string {
	return strconv.FormatUint(uint64(a), 10)
}

// ParseAID reads an AID in decimal.
func ParseAID(s string) (AID, error) {
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("parse aid %q: %w", s, err)
	}
	if n == 0 {
		return 0, fmt.Errorf("parse aid %q: aids start at 1", s)
	}
	return AID(n), nil
}
