package bus

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
)

// ConnConfig says how a service connects to NATS.
type ConnConfig struct {
	URL     string
	Service Service
	// PasswordFile is the 0600 file holding the service's NATS password.
	PasswordFile string
	Logger       *slog.Logger
}

// Connect connects as the service's own NATS user, with the service's
// inbox prefix (_INBOX.<service>) so that its replies arrive on the only
// inboxes it may subscribe to. The password is read from a 0600 file and
// never logged.
func Connect(cfg ConnConfig) (*nats.Conn, error) {
	if !cfg.Service.Valid() {
		return nil, fmt.Errorf("connect: unknown service %q", cfg.Service)
	}
	if cfg.URL == "" || cfg.PasswordFile == "" {
		return nil, errors.New("connect: URL and password file are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	pass, err := ReadSecretFile(cfg.PasswordFile)
	if err != nil {
		return nil, fmt.Errorf("connect: %w", err)
	}
	log := cfg.Logger.With("component", "nats")
	nc, err := nats.Connect(cfg.URL,
		nats.UserInfo(string(cfg.Service), string(pass.Reveal())),
		nats.Name("mcpgw-"+string(cfg.Service)),
		nats.CustomInboxPrefix(cfg.Service.InboxPrefix()),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250*time.Millisecond),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			subj := ""
			if sub != nil {
				subj = sub.Subject
			}
			log.Warn("nats async error", "subject", subj, "err", err)
		}),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) { log.Warn("nats disconnected", "err", err) }),
		nats.ReconnectHandler(func(*nats.Conn) { log.Info("nats reconnected") }),
	)
	if err != nil {
		return nil, fmt.Errorf("connect to nats as %s: %w", cfg.Service, err)
	}
	return nc, nil
}
