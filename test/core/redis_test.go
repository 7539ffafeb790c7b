package core_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// redis from Debian under sequential ids, on a unix socket of its own:
// values set with redis-cli come back exactly, redis-benchmark runs its
// SET and GET, BGSAVE and BGREWRITEAOF fork children that write the RDB
// file and the AOF base, and SIGTERM ends it with status 0.  Each file
// then loads back into a second redis, in a chain of its own.  The golden
// file holds the pid file and the log lines that name processes: the
// server 1000, its BGSAVE child 1001 and its rewrite child 1002.
func TestRedis(t *testing.T) {
	needSetup(t)
	for _, name := range []string{"redis-server", "redis-cli", "redis-benchmark"} {
		needCommand(t, name)
	}
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), runDeadline)
	defer cancel()
	before := readIPC(t)
	stateDir := t.TempDir()
	r, sock := startRedis(t, ctx, stateDir, dir, "yes")

	for _, step := range [][]string{
		{"SET greeting hello", "OK"},
		{"RPUSH list a b c", "3"},
		{"INCRBY counter 41", "41"},
		{"INCR counter", "42"},
		{"GET greeting", "hello"},
		{"LRANGE list 0 -1", "a\nb\nc"},
	} {
		redisWant(t, ctx, sock, step[0], step[1])
	}
	bench := runProgram(t, ctx, bounded(exec.CommandContext(ctx, "redis-benchmark",
		"-s", sock, "-n", "1000", "-c", "2", "-t", "set,get", "--csv")), "redis-benchmark", nil)
	if bench.Code != 0 || !strings.Contains(bench.Stdout, `"SET",`) || !strings.Contains(bench.Stdout, `"GET",`) {
		t.Errorf("redis-benchmark: want exit status 0 and a SET and a GET row\n%s", bench)
	}
	// The benchmark's one key holds its 3-byte payload.
	redisWant(t, ctx, sock, "STRLEN key:__rand_int__", "3")
	redisWant(t, ctx, sock, "DBSIZE", "4")

	redisWant(t, ctx, sock, "BGSAVE", "Background saving started")
	redisDone(t, ctx, sock, "rdb_bgsave_in_progress:0", "rdb_last_bgsave_status:ok")
	redisWant(t, ctx, sock, "BGREWRITEAOF", "Background append only file rewriting started")
	redisDone(t, ctx, sock, "aof_rewrite_in_progress:0", "aof_rewrite_scheduled:0", "aof_last_bgrewrite_status:ok")
	pidFile, err := os.ReadFile(filepath.Join(dir, "redis.pid"))
	if err != nil {
		t.Fatal(err)
	}
	if err := r.cmd.Process.Signal(unix.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if res := r.finish(t); res.Code != 0 || res.Stderr != "" {
		t.Errorf("want exit status 0 and no stderr\n%s", res)
	}
	checkNoLeaks(t, stateDir, before)
	checkGolden(t, "redis", "pidfile="+string(pidFile)+logPids(t, filepath.Join(dir, "redis.log"), redisLogLine))

	// The second redis reads the RDB file with appendonly off, the AOF
	// directory with it on.
	for _, tc := range []struct{ name, file, appendonly string }{
		{"rdb", "dump.rdb", "no"},
		{"aof", "appendonlydir", "yes"},
	} {
		t.Run("load "+tc.name, func(t *testing.T) {
			loadDir := t.TempDir()
			copyTree(t, filepath.Join(dir, tc.file), filepath.Join(loadDir, tc.file))
			stateDir := t.TempDir()
			r, sock := startRedis(t, ctx, stateDir, loadDir, tc.appendonly)
			for _, step := range [][]string{
				{"DBSIZE", "4"},
				{"GET greeting", "hello"},
				{"LRANGE list 0 -1", "a\nb\nc"},
				{"GET counter", "42"},
				{"STRLEN key:__rand_int__", "3"},
			} {
				redisWant(t, ctx, sock, step[0], step[1])
			}
			if err := r.cmd.Process.Signal(unix.SIGTERM); err != nil {
				t.Fatal(err)
			}
			if res := r.finish(t); res.Code != 0 || res.Stderr != "" {
				t.Errorf("want exit status 0 and no stderr\n%s", res)
			}
			checkNoLeaks(t, stateDir, before)
		})
	}
}

// startRedis runs redis-server as a chain with sequential ids, serving
// dir/redis.sock from dir, and waits until it answers.
func startRedis(t *testing.T, ctx context.Context, stateDir, dir, appendonly string) (*chainRun, string) {
	t.Helper()
	sock := filepath.Join(dir, "redis.sock")
	r := startChain(t, ctx, stateDir, "run", "--ids", "sequential", "--",
		needCommand(t, "redis-server"), "--port", "0", "--unixsocket", sock, "--dir", dir,
		"--save", "", "--appendonly", appendonly, "--daemonize", "no",
		"--pidfile", filepath.Join(dir, "redis.pid"), "--logfile", filepath.Join(dir, "redis.log"))
	t.Cleanup(func() { killChainProcesses(t, stateDir) })
	poll(t, "redis answers PING", func() bool {
		out, err := exec.CommandContext(ctx, "redis-cli", "-s", sock, "PING").Output()
		return err == nil && string(out) == "PONG\n"
	})
	return r, sock
}

// redisCLI runs one command with redis-cli, from outside the chain, and
// returns its reply without the last newline.
func redisCLI(t *testing.T, ctx context.Context, sock, command string) string {
	t.Helper()
	args := append([]string{"-s", sock}, strings.Fields(command)...)
	res := runProgram(t, ctx, bounded(exec.CommandContext(ctx, "redis-cli", args...)), "redis-cli "+command, nil)
	if res.Code != 0 || res.Stderr != "" {
		t.Fatalf("redis-cli %s: want exit status 0\n%s", command, res)
	}
	return strings.TrimSuffix(res.Stdout, "\n")
}

func redisWant(t *testing.T, ctx context.Context, sock, command, want string) {
	t.Helper()
	if got := redisCLI(t, ctx, sock, command); got != want {
		t.Errorf("redis-cli %s = %q, want %q", command, got, want)
	}
}

// redisDone waits until INFO persistence shows every one of lines: a
// background child has finished, and how.
func redisDone(t *testing.T, ctx context.Context, sock string, lines ...string) {
	t.Helper()
	poll(t, strings.Join(lines, " "), func() bool {
		info := strings.ReplaceAll(redisCLI(t, ctx, sock, "INFO persistence"), "\r", "")
		for _, line := range lines {
			if !strings.Contains("\n"+info+"\n", "\n"+line+"\n") {
				return false
			}
		}
		return true
	})
}

var redisLogLine = regexp.MustCompile(`^(\d+):[CM] .*? [*#] (?:Redis version=.*, )?(pid=\d+, just started|` +
	`Background saving started by pid \d+|DB saved on disk|Background saving terminated with success|` +
	`Background append only file rewriting started by pid \d+|` +
	`Successfully created the temporary AOF base file \S+|Background AOF rewrite terminated with success|` +
	`Redis is now ready to exit, bye bye\.\.\.)$`)

// copyTree copies a file, or a directory of files, from src to dst.
func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	out, err := exec.Command("cp", "-a", src, dst).CombinedOutput()
	if err != nil {
		t.Fatalf("cp -a %s %s: %v\n%s", src, dst, err, out)
	}
}
