package stack

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// pidsFile records every process's pid as it starts, so that a launcher
// can clean up after a predecessor that was killed: its children die with
// it (Pdeathsig), but not what they forked (nginx's workers, which keep
// the gateway's port).
const pidsFile = "qlstack.pids"

// reapLeftovers kills what is left of the process groups of the previous
// launcher in this directory, if they still run the binary the table
// names for them.
func (s *Stack) reapLeftovers() {
	b, err := os.ReadFile(filepath.Join(s.opts.Dir, pidsFile))
	if err != nil {
		return
	}
	var pids map[string]int
	if json.Unmarshal(b, &pids) != nil {
		return
	}
	bins := map[string]string{}
	for _, c := range componentTable(s.opts.Groups) {
		bins[c.name] = resolve(c.binary(s))
	}
	for name, pgid := range pids {
		exe, ok := bins[name]
		if !ok || pgid <= 0 {
			continue
		}
		for _, pid := range groupMembers(pgid) {
			if resolve("/proc/"+strconv.Itoa(pid)+"/exe") == exe {
				s.log.Warn("killing a leftover of an earlier run", "process", name, "pgid", pgid, "pid", pid, "exe", exe)
				killGroup(pgid)
				break
			}
		}
	}
}

func resolve(p string) string {
	if r, err := filepath.EvalSymlinks(p); err == nil {
		return r
	}
	return p
}

// groupMembers lists the running (not zombie) processes of group pgid.
func groupMembers(pgid int) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var out []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// pid (comm) state ppid pgrp …; comm may contain spaces and ')'.
		i := strings.LastIndexByte(string(b), ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(b[i+1:]))
		if len(f) >= 3 && f[2] == strconv.Itoa(pgid) && f[0] != "Z" && f[0] != "X" {
			out = append(out, pid)
		}
	}
	return out
}

// groupAlive reports whether a process of group pgid is still running.
// Zombies do not count: an orphan's zombie lasts until init reaps it, and
// it holds no port.
func groupAlive(pgid int) bool {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		return syscall.Kill(-pgid, 0) != syscall.ESRCH
	}
	return len(groupMembers(pgid)) > 0
}
