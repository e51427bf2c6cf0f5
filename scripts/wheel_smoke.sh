#!/usr/bin/env bash
# The package as a user gets it: build the wheel, install it (not editable) into a fresh venv, and from another
# directory run `interviewer questions`, `interviewer grade`, and start the app long enough to fetch `/`.
# Also times the first start on the fresh install (index from the shipped vectors): page usable ≤ 8 s.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
app=""
cleanup() { [ -n "$app" ] && kill "$app" 2>/dev/null; rm -rf "$work" "$root/build"; }
trap cleanup EXIT
python3 -m pip wheel --no-deps -q -w "$work/dist" "$root"
python3 -m venv "$work/venv"
"$work/venv/bin/pip" install -q "$work"/dist/*.whl
cd "$work"
export INTERVIEWER_DATA_DIR="$work/data" GRADIO_ANALYTICS_ENABLED=False HF_HUB_OFFLINE=1 ANONYMIZED_TELEMETRY=False
"$work/venv/bin/interviewer" questions | tail -1
"$work/venv/bin/interviewer" grade --question-id kv_cache \
  --answer "KV Cache 缓存历史 token 的 K 和 V，decode 每步只算新 token，不用重算前缀；代价是显存随序列长度线性增长。" | head -1
"$work/venv/bin/interviewer" grade --question-id kv_cache/f1 --answer "每个 token 的 KV 是 2 乘层数乘 KV 头数乘 head_dim 乘字节数。" | head -1
"$work/venv/bin/python" -c "from interviewer.grading.meaning import load_scorer; from interviewer.resources import KNOWLEDGE_DIR; \
assert load_scorer() is not None, 'scorer.json not in the wheel'; assert '_bundled' in str(KNOWLEDGE_DIR), KNOWLEDGE_DIR; \
from interviewer.grading.calibration import load_calibrator; from interviewer.grading.cross import load_cross; \
assert load_calibrator() is not None, 'calibrator.json not in the wheel (or fitted on other signals)'; load_cross(); \
from interviewer.grading.relevance import load_gate; assert load_gate() is not None, 'off_topic.json not in the wheel'"
port=$("$work/venv/bin/python" -c "import socket; s=socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])")
INTERVIEWER_PORT=$port "$work/venv/bin/interviewer" serve > "$work/app.log" 2>&1 &
app=$!
"$work/venv/bin/python" - "$port" "$app" <<'PY' || { cat "$work/app.log"; exit 1; }
import os, sys, time, urllib.request
port, pid = sys.argv[1], int(sys.argv[2])
start = time.monotonic()
while time.monotonic() - start < 120:
    try:
        page = urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2).read().decode("utf-8", "replace")
        break
    except OSError:
        os.kill(pid, 0)  # the app is still running
        time.sleep(0.1)
else:
    sys.exit("wheel smoke: no page within 120 s")
assert "AI 模拟面试" in page, "wheel smoke: not our page"
print(f"wheel smoke: the installed wheel serves / {time.monotonic() - start:.1f} s after start (fresh data dir)")
PY
