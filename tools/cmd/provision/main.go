// Command provision creates or updates, as the NATS admin user, the CONTROL
// and AUDIT streams, every KV and Object Store bucket and the audit
// service's durable consumers. Services never create streams; a deployment
// runs this once before starting them.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mcpgw/mcpgw/libs/bus"
	"github.com/mcpgw/mcpgw/libs/natsserver"
)

func main() {
	url := flag.String("nats-url", envOr("MCPGW_NATS_URL", "nats://127.0.0.1:4222"), "NATS URL (env MCPGW_NATS_URL)")
	pwFile := flag.String("nats-password-file", envOr("MCPGW_NATS_PASSWORD_FILE", ""), "0600 file with the admin user's password (env MCPGW_NATS_PASSWORD_FILE)")
	replicas := flag.Int("replicas", 1, "replicas of every stream and bucket")
	flag.Parse()
	pw, err := bus.ReadSecretFile(*pwFile)
	if err != nil {
		fail(err)
	}
	nc, err := nats.Connect(*url, nats.UserInfo(natsserver.AdminUser, string(pw.Reveal())), nats.Name("mcpgw-provision"))
	if err != nil {
		fail(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		fail(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := bus.Provision(ctx, js, bus.ProvisionConfig{Replicas: *replicas}); err != nil {
		fail(err)
	}
	fmt.Println("provisioned streams CONTROL and AUDIT, buckets and consumers")
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "provision:", err)
	os.Exit(1)
}
