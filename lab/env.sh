# Sourced by the project's scripts: puts the pinned toolchain first on PATH and
# keeps the Pulumi CLI offline (no update checks, no plugin downloads).
# Usage: . lab/env.sh   (builds the toolchain on first use)
_bm_lab=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
_bm_bin=$(bash "$_bm_lab/toolchain.sh" | tail -n 1) || return 1 2>/dev/null || exit 1
# The repository's bin/ too: the CLI finds the native provider plugin
# (pulumi-resource-baremetal) on PATH, as it does every plugin it has not installed.
export PATH="$_bm_bin:$(dirname "$_bm_lab")/bin:$PATH"
export PULUMI_BAREMETAL_CACHE=${PULUMI_BAREMETAL_CACHE:-$HOME/.cache/pulumi-baremetal}
export PULUMI_HOME=${PULUMI_HOME:-$PULUMI_BAREMETAL_CACHE/pulumi-home}
export PULUMI_SKIP_UPDATE_CHECK=true
export PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true
export PULUMI_AUTOMATION_API_SKIP_VERSION_CHECK=true
unset _bm_lab _bm_bin
