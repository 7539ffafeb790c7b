package core_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

const nginxPage = "served by nginx in a vrid chain\n"

// nginx from Debian, master and two workers, with sequential ids: the
// master sets itself as owner of its channels (F_SETOWN) with its virtual
// pid, the workers start and serve a page to curl outside the chain,
// SIGHUP starts two new workers, and SIGQUIT ends it all with status 0.
// The golden file holds the pid file and the lines of the error log that
// name processes, whose order does not matter.
func TestNginx(t *testing.T) {
	needSetup(t)
	nginx := needCommand(t, "nginx")
	curl := needCommand(t, "curl")
	dir := t.TempDir()
	port := freePort(t)
	writeNginxConf(t, dir, port)
	url := fmt.Sprintf("http://127.0.0.1:%d/index.html", port)
	errorLog := filepath.Join(dir, "error.log")

	stateDir := t.TempDir()
	before := readIPC(t)
	ctx, cancel := context.WithTimeout(context.Background(), runDeadline)
	defer cancel()
	r := startChain(t, ctx, stateDir, "run", "--ids", "sequential", "--",
		nginx, "-p", dir, "-c", filepath.Join(dir, "nginx.conf"), "-g", "daemon off;")
	t.Cleanup(func() { killChainProcesses(t, stateDir) })

	poll(t, "two workers started", func() bool { return countIn(errorLog, "start worker process ") == 2 })
	checkPage(t, ctx, curl, url)
	if err := r.cmd.Process.Signal(unix.SIGHUP); err != nil {
		t.Fatal(err)
	}
	poll(t, "two new workers started and the old ones gone", func() bool {
		return countIn(errorLog, "start worker process ") == 4 && countIn(errorLog, " exited with code ") == 2
	})
	checkPage(t, ctx, curl, url)
	pidFile, err := os.ReadFile(filepath.Join(dir, "nginx.pid"))
	if err != nil {
		t.Fatal(err)
	}
	if err := r.cmd.Process.Signal(unix.SIGQUIT); err != nil {
		t.Fatal(err)
	}
	res := r.finish(t)
	if res.Code != 0 || res.Stderr != "" {
		t.Errorf("want exit status 0 and no stderr\n%s", res)
	}
	checkGolden(t, "nginx", "pidfile="+string(pidFile)+logPids(t, errorLog, nginxLogLine))
	checkNoLeaks(t, stateDir, before)
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// writeNginxConf writes the configuration and the page into dir, which
// the workers, running as nobody, can then read.
func writeNginxConf(t *testing.T, dir string, port int) {
	t.Helper()
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	conf := fmt.Sprintf(`worker_processes 2;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log notice;
events { worker_connections 64; }
http {
	access_log off;
	client_body_temp_path %[1]s/tmp;
	server {
		listen 127.0.0.1:%[2]d;
		root %[1]s;
	}
}
`, dir, port)
	for name, content := range map[string]string{"nginx.conf": conf, "index.html": nginxPage} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func countIn(path, s string) int {
	b, _ := os.ReadFile(path)
	return strings.Count(string(b), s)
}

// checkPage fetches url with curl, from outside the chain, and compares
// the body with the page.
func checkPage(t *testing.T, ctx context.Context, curl, url string) {
	t.Helper()
	cmd := bounded(exec.CommandContext(ctx, curl, "-sS", "--max-time", "10", url))
	res := runProgram(t, ctx, cmd, "curl "+url, nil)
	if res.Code != 0 || res.Stdout != nginxPage {
		t.Errorf("curl %s: want the page %q\n%s", url, nginxPage, res)
	}
}

var nginxLogLine = regexp.MustCompile(`\[notice\] (\d+)#\d+: (start worker process \d+|worker process \d+ exited with code \d+|exit)$`)

// logPids is the lines of the log at path that re matches, as "PID:
// MESSAGE" from its first two groups, without their times, sorted: the
// processes that write them run in any order.
func logPids(t *testing.T, path string, re *regexp.Regexp) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, line := range strings.Split(string(b), "\n") {
		if m := re.FindStringSubmatch(line); m != nil {
			lines = append(lines, m[1]+": "+m[2]+"\n")
		}
	}
	slices.Sort(lines)
	return strings.Join(lines, "")
}
