package fotp

/*
#include "fotp.h"
extern void fotpGoLog(void *, int, char *, char *, size_t, char **, char **);
*/
import "C"

import (
	"context"
	"log/slog"
	"strconv"
	"sync"
	"unsafe"
)

// Logging: a Client whose Config.Logger is set receives the library's events as slog records
// with attributes (never preformatted text). The C library has one process-wide logger; this
// package installs a callback that receives each event's fields as key/value strings
// (fotp_set_logger_fields) and routes it by its "client" field (fotp_client_log_id) to the
// logger of the Client that made it. Events of no client (a refused callback body, a tracker's
// store failure outside a call) go to every registered logger.
//
// Records (message, attributes; see the Rust docs of fotp::logging for the whole list):
//   - "http attempt" (info): client, op (verify/query), method, path, attempt, status or
//     error_kind, elapsed_ms, and retry_in_ms when another attempt follows;
//   - "wait poll" (debug): client, op, ft_token, poll_in_ms;
//   - "tracker <event>" (reserved, bound, settled, unsettled, store_failure,
//     fallback_to_polling) and "callback refused" with their fields.
//
// Numbers are Int64 attributes. No record carries a secret, signature, OTP code or full mobile
// number. The C library's level is the most verbose level any registered logger enables when a
// Client is created or closed, so a disabled level costs nothing in the library.

var logRegistry = struct {
	sync.RWMutex
	byClient  map[uint64]*slog.Logger
	installed bool
	level     C.int
}{byClient: map[uint64]*slog.Logger{}, level: -1}

// slog levels of the FOTP_LOG_* constants (TRACE is below debug).
var logLevels = [...]slog.Level{
	C.FOTP_LOG_ERROR: slog.LevelError,
	C.FOTP_LOG_WARN:  slog.LevelWarn,
	C.FOTP_LOG_INFO:  slog.LevelInfo,
	C.FOTP_LOG_DEBUG: slog.LevelDebug,
	C.FOTP_LOG_TRACE: slog.LevelDebug - 4,
}

var numericLogKeys = map[string]bool{
	"client": true, "attempt": true, "status": true, "elapsed_ms": true, "retry_in_ms": true,
	"poll_in_ms": true, "code_length": true, "ttl_ms": true, "bytes": true,
}

// registerLogger routes the events of the client named id to l (nil: none).
func registerLogger(id uint64, l *slog.Logger) {
	if l == nil || id == 0 {
		return
	}
	logRegistry.Lock()
	logRegistry.byClient[id] = l
	syncLogLevelLocked()
	logRegistry.Unlock()
}

func unregisterLogger(id uint64) {
	logRegistry.Lock()
	defer logRegistry.Unlock()
	if _, ok := logRegistry.byClient[id]; !ok {
		return
	}
	delete(logRegistry.byClient, id)
	syncLogLevelLocked()
}

// syncLogLevelLocked sets the library's level to the most verbose one a registered logger
// enables. The library holds no lock while it calls fotpGoLog, which only takes the read lock,
// so calling into it with the write lock held cannot deadlock.
func syncLogLevelLocked() {
	level := C.int(C.FOTP_LOG_OFF)
	for c := C.int(C.FOTP_LOG_TRACE); c >= C.FOTP_LOG_ERROR && level == C.FOTP_LOG_OFF; c-- {
		for _, l := range logRegistry.byClient {
			if l.Enabled(context.Background(), logLevels[c]) {
				level = c
				break
			}
		}
	}
	if level == logRegistry.level {
		return
	}
	var err *C.fotp_error
	if !logRegistry.installed {
		err = C.fotp_set_logger_fields(level, C.fotp_log_fields_fn(C.fotpGoLog), nil)
		logRegistry.installed = err == nil
	} else {
		err = C.fotp_set_log_level(level)
	}
	if err != nil {
		C.fotp_error_free(err)
		return
	}
	logRegistry.level = level
}

//export fotpGoLog
func fotpGoLog(_ unsafe.Pointer, level C.int, target, message *C.char, n C.size_t, keys, values **C.char) {
	if level < C.FOTP_LOG_ERROR || level > C.FOTP_LOG_TRACE {
		return
	}
	slevel := logLevels[level]
	count := int(n)
	ks := unsafe.Slice(keys, count)
	vs := unsafe.Slice(values, count)
	attrs := make([]slog.Attr, 0, count)
	var client uint64
	var event, op string
	for i := 0; i < count; i++ {
		k, v := C.GoString(ks[i]), C.GoString(vs[i])
		switch k {
		case "event":
			event = v
		case "op":
			op = v
		}
		if numericLogKeys[k] {
			if x, err := strconv.ParseInt(v, 10, 64); err == nil {
				if k == "client" {
					client = uint64(x)
				}
				attrs = append(attrs, slog.Int64(k, x))
				continue
			}
		}
		attrs = append(attrs, slog.String(k, v))
	}
	msg := eventName(C.GoString(target), event, op)

	logRegistry.RLock()
	var targets []*slog.Logger
	if l, ok := logRegistry.byClient[client]; ok {
		targets = []*slog.Logger{l}
	} else if client == 0 {
		seen := map[*slog.Logger]bool{}
		for _, l := range logRegistry.byClient {
			if !seen[l] {
				seen[l] = true
				targets = append(targets, l)
			}
		}
	}
	logRegistry.RUnlock()
	ctx := context.Background()
	for _, l := range targets {
		if l.Enabled(ctx, slevel) {
			l.LogAttrs(ctx, slevel, msg, attrs...)
		}
	}
	_ = message // the attributes carry everything the C message repeats
}

func eventName(target, event, op string) string {
	switch {
	case target == "fotp::http" && op == "wait":
		return "wait poll"
	case target == "fotp::http":
		return "http attempt"
	case target == "fotp::tracker":
		return "tracker " + event
	case target == "fotp::callback":
		return "callback " + event
	}
	return target + " " + event
}

// logRefusal records a callback the receiver refused before the library saw it (the library
// logs the bodies it refuses itself), like the library's "callback refused" events.
func logRefusal(reason string) {
	logRegistry.RLock()
	seen := map[*slog.Logger]bool{}
	for _, l := range logRegistry.byClient {
		seen[l] = true
	}
	logRegistry.RUnlock()
	for l := range seen {
		l.LogAttrs(context.Background(), slog.LevelInfo, "callback refused",
			slog.String("event", "refused"), slog.String("reason", reason))
	}
}
