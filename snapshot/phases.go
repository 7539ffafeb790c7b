package snapshot

import (
	"time"

	"github.com/sirupsen/logrus"
)

// phases logs, at debug level, how long each step of a snapshot or a
// restore took: where the time goes is the first thing a slow one asks
// (bench/snapshot.sh gives only the totals).
type phases struct {
	log  logrus.FieldLogger
	op   string
	last time.Time
}

func newPhases(log logrus.FieldLogger, op string) *phases {
	return &phases{log: log, op: op, last: time.Now()}
}

// done logs the step that ended now.
func (p *phases) done(step string) {
	now := time.Now()
	if p.log != nil {
		p.log.Debugf("%s: %s took %v", p.op, step, now.Sub(p.last).Round(time.Millisecond))
	}
	p.last = now
}
