package chain

import (
	"errors"
	"fmt"

	"github.com/sirupsen/logrus"

	"github.com/vrid/vrid/config"
	"github.com/vrid/vrid/vresource"
)

// Collect reclaims a chain that no owner will tear down: its owner died
// (a SIGKILLed `vrid run --detach`), or vrid rm ends it.  A chain of vrid
// run loses its processes, through its cgroup, then everything else.  A
// runtime's chain is only forgotten, and only once its cgroup is empty:
// its processes are the runtime's.  Collect reports whether the chain is
// gone.
func Collect(cfg *config.Config, reg vresource.Registry, ch vresource.Chain, log logrus.FieldLogger) (bool, error) {
	switch err := Kill(ch); {
	case errors.Is(err, ErrNoCgroup):
		log.Warnf("chain %s: %v: its processes, if any, are left running", ch.AID, ErrNoCgroup)
	case errors.Is(err, ErrNotOurs):
		members, err := Members(ch)
		if err != nil && !errors.Is(err, ErrNoCgroup) {
			return false, fmt.Errorf("collect chain %s: %w", ch.AID, err)
		}
		if len(members) > 0 {
			log.Infof("chain %s: its owner is gone but processes %v of its container run: left to %s", ch.AID, members, ch.Owner.Kind)
			return false, nil
		}
	case err != nil:
		return false, fmt.Errorf("collect chain %s: %w", ch.AID, err)
	}
	return true, Teardown(cfg, reg, ch)
}

// CollectStale collects every chain whose owner is gone and returns those
// it collected.
func CollectStale(cfg *config.Config, reg vresource.Registry, log logrus.FieldLogger) ([]vresource.Chain, error) {
	chains, err := reg.List()
	if err != nil {
		return nil, err
	}
	var collected []vresource.Chain
	var errs []error
	for _, ch := range chains {
		if !ch.Stale {
			continue
		}
		gone, err := Collect(cfg, reg, ch, log)
		if gone && err == nil {
			collected = append(collected, ch)
		}
		errs = append(errs, err)
	}
	return collected, errors.Join(errs...)
}
