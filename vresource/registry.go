package vresource

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Registry hands out AIDs and keeps the chains that hold them.  AIDs are
// never reused, even after Release.  The interface leaves room for a
// farm-wide backend; FileRegistry serves one host.
type Registry interface {
	// Register allocates a new AID.  A live chain with the same name
	// fails it with ErrNameInUse; a stale one gives its name up.
	Register(req Registration) (Chain, error)
	Release(aid AID) error
	// Get finds a chain by AID (all digits) or else by name.
	Get(nameOrAID string) (Chain, error)
	// List returns every chain, sorted by AID, stale ones marked.
	List() ([]Chain, error)
	// Update applies fn to a chain and stores the result; fn may not
	// change the AID.
	Update(aid AID, fn func(*Chain) error) error
}

// Registration asks for a new chain.
type Registration struct {
	Name  string // "" gives "aid-<AID>"
	Owner Owner
	// TablePath, when set, names the chain's table file once its AID is
	// known.
	TablePath func(AID) string
	// Facts known when the chain is set up, as under `vrid run`.
	Facts Facts
	// CgroupPath, when set, names the chain's cgroup (Facts.Cgroup) once
	// its AID is known, so that it is on record before the chain runs.
	CgroupPath func(AID) string
}

// Chain is one registered application chain.
type Chain struct {
	AID     AID       `json:"aid"`
	Name    string    `json:"name"`
	Owner   Owner     `json:"owner"`
	Tables  string    `json:"tables,omitempty"` // path of the table file
	Created time.Time `json:"created"`
	RootPid int       `json:"root_pid,omitempty"` // system pid of the chain root, 0 until known
	// Facts host-side vrid learned from the kernel, never from the
	// table, which the chain writes itself: they decide whom vrid signals,
	// which objects it removes and who may join (docs/security.md).
	Facts Facts `json:"facts"`

	// Stale is computed on every read: the owner process is gone.
	Stale bool `json:"-"`
	// Replaced is set only in Register's result: the stale chain whose
	// name this one took.  It is gone from the registry; its table file
	// is the caller's to remove.
	Replaced *Chain `json:"-"`
}

var (
	ErrNameInUse    = errors.New("chain name in use")
	ErrUnknownChain = errors.New("unknown chain")
)

// NameInUseError says which live chain holds a name.  It matches
// ErrNameInUse with errors.Is.
type NameInUseError struct {
	Name string
	AID  AID
}

func (e *NameInUseError) Error() string {
	return fmt.Sprintf("chain name %q is already running as AID %d; pick another --name or stop it", e.Name, e.AID)
}

func (e *NameInUseError) Is(target error) bool { return target == ErrNameInUse }

func defaultChainName(aid AID) string { return "aid-" + aid.String() }

// checkChainName keeps names usable in table headers, file names and on
// the command line, and apart from AIDs: a name never reads as an AID or
// as the default name of another chain.
func checkChainName(name string) error {
	if err := checkTableName(name); err != nil {
		return err
	}
	if name == "" {
		return errors.New("empty chain name")
	}
	for i, c := range []byte(name) {
		letterOrDigit := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if !letterOrDigit && (i == 0 || c != '.' && c != '_' && c != '-') {
			return fmt.Errorf("chain name %q: use letters, digits and . _ - (not first)", name)
		}
	}
	if allDigits(name) {
		return fmt.Errorf("chain name %q reads as an AID", name)
	}
	if rest, ok := strings.CutPrefix(name, "aid-"); ok && allDigits(rest) {
		return fmt.Errorf("chain name %q is kept for the chain of that AID", name)
	}
	return nil
}

func allDigits(s string) bool {
	for _, c := range []byte(s) {
		if c < '0' || c > '9' {
			return false
		}
	}
	return s != ""
}
