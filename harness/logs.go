package harness

import (
	"bufio"
	"encoding/json"
	"io"

	"github.com/sirupsen/logrus"
)

// A log line of the preload layer (vresource/preload/log.c).
type layerLine struct {
	Level string `json:"level"`
	Pid   int    `json:"pid"`
	Msg   string `json:"msg"`
}

// forwardLogs copies the layer's JSON lines into our log until every
// process of the chain has closed the pipe.
func forwardLogs(r io.ReadCloser, log *logrus.Entry) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer r.Close()
		scanner := bufio.NewScanner(r)
		for scanner.Scan() {
			var line layerLine
			if err := json.Unmarshal(scanner.Bytes(), &line); err != nil {
				log.WithField("raw", scanner.Text()).Warn("unreadable line from the preload layer")
				continue
			}
			level, err := logrus.ParseLevel(line.Level)
			if err != nil {
				level = logrus.WarnLevel
			}
			log.WithField("pid", line.Pid).Log(level, "libvrid: "+line.Msg)
		}
	}()
	return done
}
