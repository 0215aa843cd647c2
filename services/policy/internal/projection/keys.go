package projection

import (
	"sync"

	"github.com/mcpgw/mcpgw/libs/bus"
	controlv1 "github.com/mcpgw/mcpgw/libs/gen/mcpgw/control/v1"
)

// Keys indexes agent keys by tenant and key ID (the catalog finds them only
// by hash). It is safe for concurrent use.
type Keys struct {
	mu   sync.RWMutex
	keys map[string]keyEntry
}

type keyEntry struct {
	agent   string
	revoked bool
}

// NewKeys returns an empty index.
func NewKeys() *Keys { return &Keys{keys: map[string]keyEntry{}} }

// Apply records AgentKeyIssued and AgentKeyRevoked events.
func (k *Keys) Apply(ev *bus.Event) {
	tenant := ev.Meta.GetTenant()
	k.mu.Lock()
	defer k.mu.Unlock()
	switch m := ev.Msg.(type) {
	case *controlv1.AgentKeyIssued:
		k.keys[tenant+"/"+m.GetKeyId()] = keyEntry{agent: m.GetAgentId()}
	case *controlv1.AgentKeyRevoked:
		key := tenant + "/" + m.GetKeyId()
		if e, ok := k.keys[key]; ok {
			e.revoked = true
			k.keys[key] = e
		}
	}
}

// Key returns the agent of a tenant's key and whether it was revoked.
func (k *Keys) Key(tenant, keyID string) (agentID string, revoked bool, ok bool) {
	k.mu.RLock()
	defer k.mu.RUnlock()
	e, ok := k.keys[tenant+"/"+keyID]
	return e.agent, e.revoked, ok
}
