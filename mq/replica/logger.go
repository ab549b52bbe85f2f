package replica

import (
	"fmt"
	"log/slog"
)

// raftLogger sends raft's log lines to slog. Debug lines are dropped: raft
// logs every message at that level.
type raftLogger struct{ l *slog.Logger }

func (r raftLogger) Debug(...any)          {}
func (r raftLogger) Debugf(string, ...any) {}

func (r raftLogger) Info(v ...any)                 { r.l.Info(fmt.Sprint(v...)) }
func (r raftLogger) Infof(format string, v ...any) { r.l.Info(fmt.Sprintf(format, v...)) }

func (r raftLogger) Warning(v ...any)                 { r.l.Warn(fmt.Sprint(v...)) }
func (r raftLogger) Warningf(format string, v ...any) { r.l.Warn(fmt.Sprintf(format, v...)) }

func (r raftLogger) Error(v ...any)                 { r.l.Error(fmt.Sprint(v...)) }
func (r raftLogger) Errorf(format string, v ...any) { r.l.Error(fmt.Sprintf(format, v...)) }

func (r raftLogger) Fatal(v ...any) { r.Panic(v...) }
func (r raftLogger) Fatalf(format string, v ...any) {
	r.Panicf(format, v...)
}

func (r raftLogger) Panic(v ...any) {
	s := fmt.Sprint(v...)
	r.l.Error(s)
	panic(s)
}

func (r raftLogger) Panicf(format string, v ...any) {
	s := fmt.Sprintf(format, v...)
	r.l.Error(s)
	panic(s)
}
