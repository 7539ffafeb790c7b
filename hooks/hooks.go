// Package hooks owns the two moments of a container's life the shim does
// not see through runc's task service: Created, which the shim calls once
// runc has created the container and its init runs nothing of the
// container's yet, records what the kernel says of it in the chain; and
// the poststop hook (vrid-hook), which tears the chain down once the
// container's processes are gone, in the runtime's namespaces, from the
// container's state on stdin as the OCI runtime spec defines it.
package hooks

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"runtime"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"github.com/vrid/vrid/chain"
	"github.com/vrid/vrid/config"
	"github.com/vrid/vrid/oci"
	"github.com/vrid/vrid/vresource"
)

// ReadState reads the container state a runtime hands a hook.
func ReadState(r io.Reader) (*specs.State, error) {
	var state specs.State
	if err := json.NewDecoder(r).Decode(&state); err != nil {
		return nil, fmt.Errorf("read container state from stdin: %w", err)
	}
	return &state, nil
}

// Created records the container's init process as the root of chain
// aid, and the facts of its namespaces, cgroup and uids.  The shim created
// the chain's tables before the runtime bind-mounted them into the
// container (shim.prepare); Created only makes sure that they are still
// there, reached through no symlink.  spec is the one the runtime was
// given, as the shim saved it in the bundle.
func Created(cfg *config.Config, reg vresource.Registry, aid vresource.AID, state *specs.State, spec *specs.Spec) error {
	ch, err := reg.Get(aid.String())
	if err != nil {
		return fmt.Errorf("container %s: %w (was it created by containerd-shim-vrid-v1?)", state.ID, err)
	}
	if err := chain.CheckTables(cfg, ch); err != nil {
		return fmt.Errorf("container %s: %w", state.ID, err)
	}
	if state.Pid > 0 {
		// runc init runs nothing of the container's yet: the namespaces
		// it is in are the ones runc gave it.
		facts, err := containerFacts(state, spec)
		if errors.Is(err, fs.ErrNotExist) {
			// The init is gone already (killed before its start): the
			// container stops with no process, and the chain keeps no
			// facts, so teardown removes nothing it can't vouch for.
			return nil
		}
		if err != nil {
			return fmt.Errorf("container %s: %w", state.ID, err)
		}
		err = reg.Update(aid, func(c *vresource.Chain) error {
			if c.RootPid == 0 {
				c.RootPid = state.Pid
			}
			if err := sharePIDNamespace(&c.Facts, facts.PIDNS); err != nil {
				return err
			}
			joinFacts(&c.Facts, facts)
			return nil
		})
		if err != nil {
			return fmt.Errorf("container %s: %w", state.ID, err)
		}
	}
	return nil
}

// sharePIDNamespace records the pid namespace of a chain's first
// container, a new one that the shim could not know, and holds every later
// container to it: the shim checked their specs, this checks what runc
// made of them.
func sharePIDNamespace(f *vresource.Facts, pidNS vresource.NamespaceID) error {
	switch f.PIDNS {
	case vresource.NamespaceID{}:
		f.PIDNS = pidNS
	case pidNS:
	default:
		return fmt.Errorf("pid namespace %s is not its chain's %s: the containers of a chain must share one", pidNS, f.PIDNS)
	}
	return nil
}

// Poststop tears chain aid down.  The container's spec in its bundle says
// where its System V objects live.  A chain already gone is no error.
func Poststop(cfg *config.Config, reg vresource.Registry, aid vresource.AID, state *specs.State) error {
	ch, err := reg.Get(aid.String())
	if errors.Is(err, vresource.ErrUnknownChain) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("container %s: %w", state.ID, err)
	}
	ns := oci.IPCNamespace{Private: true}
	if state.Bundle != "" {
		spec, err := oci.LoadSpec(state.Bundle)
		if err != nil {
			return fmt.Errorf("container %s: %w", state.ID, err)
		}
		ns = oci.IPCNamespaceOf(spec)
	}
	if err := Teardown(cfg, reg, ch, ns); err != nil {
		return fmt.Errorf("container %s: %w", state.ID, err)
	}
	return nil
}

// Teardown tears a chain down from the runtime's namespaces once its
// container has stopped.  Its System V objects are removed in the IPC
// namespace they live in: a private one is gone with the container, and
// its objects with it; one the container joined is entered if it is
// still the chain's, Facts.IPCNS (a pid in the path may have been
// reused); the host's is ours already, and chain.Teardown checks it.
func Teardown(cfg *config.Config, reg vresource.Registry, ch vresource.Chain, ns oci.IPCNamespace) error {
	switch {
	case ns.Private:
		return chain.Forget(cfg, reg, ch)
	case ns.Path != "":
		err := inIPCNamespace(ns.Path, ch.Facts.IPCNS, func() error { return chain.Teardown(cfg, reg, ch) })
		if errors.Is(err, errOtherNamespace) {
			logrus.Warnf("chain %s: System V objects left alone: %v", ch.AID, err)
		}
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, errOtherNamespace) {
			// Whoever held the namespace is gone, and so is it, or it is
			// out of reach.
			return chain.Forget(cfg, reg, ch)
		}
		return err
	}
	return chain.Teardown(cfg, reg, ch)
}

// errOtherNamespace: the path names a namespace that is not the chain's.
var errOtherNamespace = errors.New("not the chain's IPC namespace")

// inIPCNamespace runs fn on a thread of its own in the IPC namespace at
// path, if that is namespace want.  The thread is never given back to
// other goroutines: it ends with fn's goroutine.
func inIPCNamespace(path string, want vresource.NamespaceID, fn func() error) error {
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		f, err := os.Open(path)
		if err != nil {
			done <- fmt.Errorf("enter IPC namespace: %w", err)
			return
		}
		defer f.Close()
		// The descriptor is the namespace setns enters: what it names
		// now can't change.
		got, err := vresource.NamespaceOfFD(int(f.Fd()))
		if err != nil {
			done <- fmt.Errorf("enter IPC namespace %s: %w", path, err)
			return
		}
		if got != want {
			done <- fmt.Errorf("%s is IPC namespace %s, the chain's is %s: %w", path, got, want, errOtherNamespace)
			return
		}
		if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWIPC); err != nil {
			done <- fmt.Errorf("enter IPC namespace %s: %w", path, err)
			return
		}
		done <- fn()
	}()
	return <-done
}
