// Package vault reads the secrets that Ferry's references (package ref) name from HashiCorp
// Vault's KV secrets engines, versions 1 and 2.
//
// [Login] authenticates with the Kubernetes, AppRole or token auth method; [Client.Resolve]
// reads every secret a set of references names, once per distinct path and version and in
// parallel, and returns [Values] whose Lookup feeds [ref.Template.Render];
// [Client.Fingerprints] tells when a secret changed; [Client.StartRenewal] keeps a
// long-running process logged in.
//
// # Paths
//
// A reference's path is a secret's path as `vault kv get` or the HTTP API take it. The
// Client asks Vault once per mount (sys/internal/ui/mounts, which any token with a capability
// under the mount may read) which mount a path lies in and whether it is KV version 1 or 2. On
// a KV version 2 mount the "data/" after the mount may be spelt out or left out: secret/db
// and secret/data/db are the same secret, read once, at secret/data/db. (A secret whose own
// name starts with "data/" therefore needs the prefix spelt out: secret/data/data/x.) A
// "#VERSION" on a KV version 1 path is an error, since that engine keeps no versions. Other
// secrets engines are refused.
//
// # Values
//
// A string value is used as it is. Any other JSON value of a secret (a number, a boolean,
// null, an object or an array) is used as its compact JSON encoding, with object keys sorted
// and without HTML escaping: 5432, true, {"a":1}.
//
// # Environment
//
// [ConfigFromEnv] reads the variables of the Vault CLI, with the CLI's meaning:
//
//	VAULT_ADDR             Vault's address, such as https://vault.example.com:8200 (required)
//	VAULT_NAMESPACE        Vault Enterprise namespace
//	VAULT_CACERT           PEM file of the CA certificates to verify Vault's certificate with
//	VAULT_CACERT_BYTES     the same, PEM text
//	VAULT_CAPATH           directory of PEM CA certificates
//	VAULT_CLIENT_CERT      PEM client certificate for TLS client authentication
//	VAULT_CLIENT_KEY       its PEM private key
//	VAULT_TLS_SERVER_NAME  server name to verify Vault's certificate against
//	VAULT_SKIP_VERIFY      "true" skips verifying Vault's certificate (insecure)
//	VAULT_CLIENT_TIMEOUT   time limit of one request: seconds ("30") or a duration ("30s");
//	                       default 30s
//	VAULT_MAX_RETRIES      retries of a request that failed to connect or got a 5xx or 429;
//	                       default 2, 0 disables
//	VAULT_TOKEN            a Vault token (selects the token auth method)
//
// and Ferry's own:
//
//	VAULT_TOKEN_FILE             file holding a Vault token (selects the token auth method)
//	FERRY_VAULT_AUTH_METHOD      kubernetes, approle or token; default token when VAULT_TOKEN
//	                             or VAULT_TOKEN_FILE is set, else kubernetes
//	FERRY_VAULT_AUTH_PATH        mount path of the auth method; default "kubernetes" or
//	                             "approle"
//	FERRY_VAULT_ROLE             role to log in as with the kubernetes method (required)
//	FERRY_VAULT_JWT_FILE         ServiceAccount token for the kubernetes method; default
//	                             /var/run/secrets/kubernetes.io/serviceaccount/token
//	FERRY_VAULT_ROLE_ID          role ID for the approle method
//	FERRY_VAULT_ROLE_ID_FILE     file holding the role ID (either this or FERRY_VAULT_ROLE_ID)
//	FERRY_VAULT_SECRET_ID_FILE   file holding the secret ID for the approle method (optional:
//	                             roles with bind_secret_id=false need none)
//
// An empty variable counts as unset. The api package's own reading of the environment
// (VAULT_AGENT_ADDR, VAULT_HEADERS, VAULT_RATE_LIMIT, VAULT_PROXY_ADDR, ...) is not used: the
// client is built from a [Config] alone.
//
// # Errors
//
// Errors never contain a secret value, a token, a JWT or a secret ID. An error about a
// reference is an [*Error], whose message starts with the reference ("vault:secret/db#pw: no
// secret at secret/data/db"); the sentinel errors [ErrNotFound], [ErrNoKey],
// [ErrPermissionDenied], [ErrUnreachable] and [ErrUnsupported] classify causes under
// [errors.Is].
package vault
