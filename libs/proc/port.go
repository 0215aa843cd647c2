package proc

import (
	"errors"
	"fmt"
	"net"
)

// MaxPortAttempts is how many free ports TryPorts tries before it gives up.
const MaxPortAttempts = 5

// PortInUseError reports that a child exited because its port was taken.
// Its message is that of Err.
type PortInUseError struct{ Err error }

// Error returns Err's message.
func (e *PortInUseError) Error() string { return e.Err.Error() }

// Unwrap returns Err.
func (e *PortInUseError) Unwrap() error { return e.Err }

// FreePort returns a TCP port on 127.0.0.1 that was free when it was asked
// for. Another process may take it before the caller binds it; TryPorts
// handles that.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// TryPorts calls start with port. When port is zero it calls start with a
// port from FreePort instead and, as long as start fails with a
// *PortInUseError (anywhere in its chain), calls retrying (if not nil) with
// the taken port and tries another, up to MaxPortAttempts ports in all. A
// non-zero port is tried once. It returns start's last result, or the error
// from FreePort.
func TryPorts[T any](port int, start func(port int) (T, error), retrying func(port int)) (T, error) {
	for attempt := 1; ; attempt++ {
		p := port
		if p == 0 {
			var err error
			if p, err = FreePort(); err != nil {
				var zero T
				return zero, err
			}
		}
		v, err := start(p)
		var inUse *PortInUseError
		if err != nil && port == 0 && errors.As(err, &inUse) && attempt < MaxPortAttempts {
			if retrying != nil {
				retrying(p)
			}
			continue
		}
		return v, err
	}
}
