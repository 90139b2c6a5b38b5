// Package redistest runs private redis-server processes on loopback for the
// tests of the shared pin store (the affinity and integration packages).
package redistest

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// patience bounds a wait for redis-server to start or to exit: minutes, so
// that a loaded machine never reaches it; it only turns a hang into a failure.
const patience = 2 * time.Minute

// Server is a private redis-server child process on a loopback port.
// It can be killed and restarted on the same port.
type Server struct {
	t       *testing.T
	bin     string
	port    int
	Addr    string // host:port
	dir     string
	logPath string

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
}

// binary finds redis-server or fails the test with how to install it.
func binary(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatalf("redis-server is not on PATH (%v); these tests need it: install it with "+
			"`apt-get install redis-server` (Debian/Ubuntu) or `brew install redis` (macOS), "+
			"or set LLM_AFFINITY_TEST_REDIS=host:port for the tests that do not kill Redis", err)
	}
	return bin
}

// FreePort returns a loopback TCP port that was free a moment ago (for a
// redis-server, or any other test server).
func FreePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// Start starts a private redis-server and stops it when the test ends.
func Start(t *testing.T) *Server {
	t.Helper()
	r := &Server{t: t, bin: binary(t), port: FreePort(t), dir: t.TempDir()}
	r.Addr = fmt.Sprintf("127.0.0.1:%d", r.port)
	r.logPath = filepath.Join(r.dir, "redis.log")
	r.start()
	t.Cleanup(r.Kill)
	return r
}

// Addr is a Redis server for tests that do not kill it: the one CI
// names in LLM_AFFINITY_TEST_REDIS, else a private child process.
func Addr(t *testing.T) string {
	t.Helper()
	if addr := os.Getenv("LLM_AFFINITY_TEST_REDIS"); addr != "" {
		if err := Ping(addr); err != nil {
			t.Fatalf("LLM_AFFINITY_TEST_REDIS=%s does not answer PING: %v", addr, err)
		}
		return addr
	}
	return Start(t).Addr
}

// start runs redis-server on r.port and waits until it answers PING.
func (r *Server) start() {
	r.t.Helper()
	logFile, err := os.OpenFile(r.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		r.t.Fatal(err)
	}
	defer logFile.Close() // the child has its own descriptor
	cmd := exec.Command(r.bin, "--port", strconv.Itoa(r.port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", r.dir)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		r.t.Fatalf("starting redis-server: %v", err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	r.mu.Lock()
	r.cmd, r.exited = cmd, exited
	r.mu.Unlock()

	deadline := time.Now().Add(patience)
	for {
		select {
		case <-exited:
			r.t.Fatalf("redis-server on port %d exited at start:\n%s", r.port, r.log())
		default:
		}
		err := Ping(r.Addr)
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			r.Kill()
			r.t.Fatalf("redis-server on %s did not answer PING within %v (%v):\n%s", r.Addr, patience, err, r.log())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Kill stops the server at once (SIGKILL, no shutdown) and waits for it.
func (r *Server) Kill() {
	r.mu.Lock()
	cmd, exited := r.cmd, r.exited
	r.cmd = nil
	r.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Kill()
	select {
	case <-exited:
	case <-time.After(patience):
		r.t.Errorf("redis-server pid %d did not exit after SIGKILL", cmd.Process.Pid)
	}
}

// Restart starts the server again on the same port, empty.
func (r *Server) Restart() {
	r.t.Helper()
	r.start()
}

func (r *Server) log() string {
	b, _ := os.ReadFile(r.logPath)
	return string(b)
}

// Ping sends a plain RESP PING and expects +PONG.
func Ping(addr string) error {
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(time.Second))
	if _, err := io.WriteString(conn, "PING\r\n"); err != nil {
		return err
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return err
	}
	if strings.TrimSpace(line) != "+PONG" {
		return fmt.Errorf("PING answered %q", line)
	}
	return nil
}
