#!/usr/bin/env bash
# Drives `docker trust` through a repository's life against a trust server over HTTPS.
# Usage: docker-trust.sh SERVER_URL CA_FILE ENGINE_SOCKET IMAGE_REPO [ADMIN_AUTH BOB_AUTH]
#   IMAGE_REPO   e.g. registry.signet.test:5700/demo/app (its tag v1 must exist in the registry
#                behind the stand-in engine at ENGINE_SOCKET)
#   *_AUTH       optional base64 user:password for the registry token service, per signer
# Prints one line per step and "N passed, M failed"; exits non-zero on the first failure.
set -u
URL=${1:?server url}; CA=${2:?ca file}; SOCK=${3:?engine socket}; IMG=${4:?image repo}
ADMIN_AUTH=${5:-}; BOB_AUTH=${6:-}
WORK=$(mktemp -d); trap 'rm -rf "$WORK"' EXIT
HOSTPORT=${URL#https://}; HOSTPORT=${HOSTPORT%%/*}
REGISTRY=${IMG%%/*}
export DOCKER_CONTENT_TRUST_SERVER=$URL DOCKER_HOST=unix://$SOCK
export DOCKER_CONTENT_TRUST_ROOT_PASSPHRASE=root-pass DOCKER_CONTENT_TRUST_REPOSITORY_PASSPHRASE=repo-pass
# admin owns the repository; bob is a second signer; fresh has no cache; anon has no credentials.
for who in admin bob fresh anon; do
  mkdir -p "$WORK/$who/tls/$HOSTPORT"; cp "$CA" "$WORK/$who/tls/$HOSTPORT/ca.crt"
  case $who in admin) auth=$ADMIN_AUTH ;; anon) auth= ;; *) auth=$BOB_AUTH ;; esac
  if [ -n "$auth" ]; then printf '{"auths":{"%s":{"auth":"%s"}}}\n' "$REGISTRY" "$auth" > "$WORK/$who/config.json"; fi
done
as() { local who=$1; shift; DOCKER_CONFIG="$WORK/$who" "$@"; }
pass=0
step() { local name=$1; shift
  if out=$("$@" 2>&1); then echo "PASS $name"; pass=$((pass+1))
  else echo "FAIL $name"; echo "$out" | tail -5 | sed 's/^/    /'; echo "$pass passed, 1 failed"; exit 1; fi; }
expect() { local name=$1 pattern=$2; shift 2
  out=$("$@" 2>&1)
  if grep -qE "$pattern" <<<"$out"; then echo "PASS $name"; pass=$((pass+1))
  else echo "FAIL $name (wanted /$pattern/)"; echo "$out" | tail -8 | sed 's/^/    /'; echo "$pass passed, 1 failed"; exit 1; fi; }
refuse() { local name=$1 pattern=$2; shift 2
  out=$("$@" 2>&1)
  if [ $? -ne 0 ] && grep -qE "$pattern" <<<"$out"; then echo "PASS $name"; pass=$((pass+1))
  else echo "FAIL $name (wanted failure /$pattern/)"; echo "$out" | tail -8 | sed 's/^/    /'; echo "$pass passed, 1 failed"; exit 1; fi; }

step   "key generate alice"          as admin docker trust key generate alice --dir "$WORK"
step   "key generate bob"            as bob docker trust key generate bob --dir "$WORK"
expect "signer add alice (init)"     "Successfully added signer: alice" as admin docker trust signer add --key "$WORK/alice.pub" alice "$IMG"
expect "signer add bob"              "Successfully added signer: bob" as admin docker trust signer add --key "$WORK/bob.pub" bob "$IMG"
expect "sign v1 (engine push)"       "Successfully signed" as admin docker trust sign "$IMG:v1"
expect "bob signs v1 too"            "Successfully signed" as bob docker trust sign "$IMG:v1"
expect "inspect --pretty"            "^v1 +[0-9a-f]{64} +alice, bob" as admin docker trust inspect --pretty "$IMG"
expect "inspect (json)"              '"SignedTag": "v1"' as bob docker trust inspect "$IMG"
expect "fresh client inspects"       "alice, bob" as fresh docker trust inspect --pretty "$IMG:v1"
expect "revoke v1"                   "Successfully deleted signature" as admin docker trust revoke --yes "$IMG:v1"
expect "v1 gone after revoke"        "No signatures for" as admin docker trust inspect --pretty "$IMG"
step   "signer remove bob"           as admin docker trust signer remove --force bob "$IMG"
if [ -n "$ADMIN_AUTH" ]; then
  # Without credentials the token service grants nothing: the server refuses even reads.
  refuse "anonymous inspect refused" "not authorized|unauthorized|401|cannot access" as anon docker trust inspect "$IMG"
fi
echo "$pass passed, 0 failed"
