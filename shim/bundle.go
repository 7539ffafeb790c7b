package shim

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/vrid/vrid/chain"
	"github.com/vrid/vrid/config"
	"github.com/vrid/vrid/hooks"
	"github.com/vrid/vrid/oci"
	"github.com/vrid/vrid/vresource"
)

// StateFile is where the shim notes a container's chain in its bundle, so
// that `shim delete`, run when the shim itself is gone, still finds it.
const StateFile = "vrid.json"

// bundleState is the content of StateFile.
type bundleState struct {
	AID vresource.AID `json:"aid"`
	// Owned: the container registered the chain, and tears it down.
	Owned bool `json:"owned"`
	// Pod: the chain is this CRI pod's (its sandbox id), the sandbox's
	// to tear down.
	Pod string `json:"pod,omitempty"`
	// Sandbox: the bundle is the sandbox's of this CRI pod, in no chain;
	// deleting it tears the pod's chain down.
	Sandbox string `json:"sandbox,omitempty"`
	// Config is the config.toml the shim read, "" for the defaults.
	Config string `json:"config,omitempty"`
}

func writeBundleState(bundle string, st bundleState) error {
	data, err := json.Marshal(st)
	if err != nil {
		return err
	}
	return oci.WriteFileAtomic(filepath.Join(bundle, StateFile), data, 0o600)
}

// readBundleState reads StateFile; a bundle without one is not a vrid
// container, and gives nil.
func readBundleState(bundle string) (*bundleState, error) {
	data, err := os.ReadFile(filepath.Join(bundle, StateFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var st bundleState
	if err := json.Unmarshal(data, &st); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(bundle, StateFile), err)
	}
	return &st, nil
}

// cleanupBundle makes sure that the chain of a deleted container is gone:
// the poststop hook tears it down, and this is for when the hook failed
// or never ran.  Tearing down twice does no harm.
func cleanupBundle(bundle string) error {
	st, err := readBundleState(bundle)
	if err != nil || st == nil {
		return err
	}
	switch {
	case st.Owned:
		err = teardownChain(bundle, st)
	case st.Sandbox != "":
		err = teardownPod(st)
	}
	if err != nil {
		return err
	}
	if err := os.Remove(filepath.Join(bundle, StateFile)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

func teardownChain(bundle string, st *bundleState) error {
	cfg, reg, ch, err := st.chain()
	if errors.Is(err, vresource.ErrUnknownChain) {
		return nil
	}
	if err != nil {
		return err
	}
	ns := oci.IPCNamespace{Private: true}
	if spec, err := oci.LoadSpec(bundle); err == nil {
		ns = oci.IPCNamespaceOf(spec)
	}
	return hooks.Teardown(cfg, reg, ch, ns)
}

// teardownPod tears down the chain of the pod whose sandbox's task is
// gone.  Its pause process has ended, and with it every container in the
// pod's pid namespace; a container with the host's pid namespace still
// running (its task not deleted yet) keeps the chain, which `vrid gc`
// collects once its cgroups are empty and the shim, its owner, is gone.
// The chain's System V objects are removed where they live: in the
// host's IPC namespace, which is the shim's, if the chain's is that one;
// else in the pod's, which has no process left to enter it through, and
// whose objects are gone with it, so the chain is only forgotten.
func teardownPod(st *bundleState) error {
	cfg, err := config.Load(st.Config)
	if err != nil {
		return err
	}
	reg, err := chain.OpenRegistry(&cfg)
	if err != nil {
		return err
	}
	ch, err := reg.Get(oci.PodChainName(st.Sandbox))
	if errors.Is(err, vresource.ErrUnknownChain) {
		return nil
	}
	if err != nil {
		return err
	}
	if ch.Owner.Kind != OwnerKind || ch.Facts.Sandbox != st.Sandbox {
		return nil // a chain of that name that is not this pod's
	}
	members, err := chain.Members(ch)
	if err != nil && !errors.Is(err, chain.ErrNoCgroup) {
		return err
	}
	if len(members) > 0 {
		return fmt.Errorf("pod chain %s (AID %d): processes %v still run in it, left to vrid gc", ch.Name, ch.AID, members)
	}
	if ok, _ := chain.InIPCNamespace(ch.Facts); ok {
		return chain.Teardown(&cfg, reg, ch)
	}
	return chain.Forget(&cfg, reg, ch)
}

// chain loads the config the shim read for the bundle's container, and
// finds its chain.
func (st *bundleState) chain() (*config.Config, vresource.Registry, vresource.Chain, error) {
	cfg, err := config.Load(st.Config)
	if err != nil {
		return nil, nil, vresource.Chain{}, err
	}
	reg, err := chain.OpenRegistry(&cfg)
	if err != nil {
		return nil, nil, vresource.Chain{}, err
	}
	ch, err := reg.Get(st.AID.String())
	return &cfg, reg, ch, err
}
