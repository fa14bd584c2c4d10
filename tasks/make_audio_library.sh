#!/usr/bin/env bash
# Builds the shipped caller-audio library (assets/library/v1/) offline: each utterance is
# synthesized with the most natural offline voice installed (flite's slt/rms clustergen voices
# when Debian's `flite` is there, else espeak-ng), padded with 300 ms of silence on both ends,
# and written as 16 kHz mono Ogg Vorbis; silence and noise beds come from sox. The manifest
# (manifest.json: name, kind, text, voice, engine, sha256, bytes, durationMs) is what the server
# reads (lib/audio.ts). A version is never rebuilt in place: change the text or voices in a new
# folder (v2/), so mainline eval sets keep the exact audio they were measured with.
set -euo pipefail
out="${1:-$(dirname "$0")/../assets/library/v1}"
mkdir -p "$out"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

if command -v flite >/dev/null; then engine=flite; else engine=espeak-ng; fi

# name|voice|text (voice: a flite voice, or an espeak-ng voice when flite is missing)
utterances=(
  "greeting|slt|Hi there, I'm calling about my appointment."
  "question|rms|What are your opening hours on Saturday?"
  "booking|slt|Could I book a table for two at seven thirty on Friday evening?"
  "name_and_number|rms|My name is Jordan Lee, and my number is five five five, two one eight, four seven nine three."
  "rambling|slt|Well, so, the thing is, I ordered a blue jacket last week, but the one that came was more of a green, and I'm not sure if I want to send it back or maybe swap it for a different size, because honestly the sleeves were a little long too."
  "yes|rms|Yes."
  "interruption|slt|Sorry, wait, can I stop you there?"
  "mm_hmm|rms|Mm-hmm."
  "uh_huh|slt|Uh-huh."
  "okay|rms|Okay."
)

manifest="["
sep=""
add() { # name kind text voice engine file
  local sha bytes ms
  sha=$(sha256sum "$6" | cut -d' ' -f1)
  bytes=$(stat -c %s "$6")
  ms=$(soxi -D "$6" | awk '{printf "%d", $1 * 1000 + 0.5}')
  manifest+="$sep{\"name\":\"$1\",\"kind\":\"$2\",\"text\":$(printf '%s' "$3" | python3 -c 'import json,sys;print(json.dumps(sys.stdin.read()))'),\"voice\":\"$4\",\"engine\":\"$5\",\"sha256\":\"$sha\",\"bytes\":$bytes,\"durationMs\":$ms}"
  sep=","
}

for u in "${utterances[@]}"; do
  IFS='|' read -r key voice text <<<"$u"
  if [ "$engine" = flite ]; then
    flite -voice "$voice" -t "$text" -o "$tmp/raw.wav"
  else
    voice=$([ "$voice" = slt ] && echo en-us+f3 || echo en-us)
    printf '%s' "$text" | espeak-ng -v "$voice" --stdin -w "$tmp/raw.wav"
  fi
  file="v1-$key.ogg"
  sox "$tmp/raw.wav" -r 16000 -c 1 "$tmp/pad.wav" pad 0.3 0.3 norm -3
  sox "$tmp/pad.wav" -C 0 "$out/$file"
  add "$file" speech "$text" "$voice" "$engine" "$out/$file"
done

# Beds: silence, and noise to play under speech (`background`, `noise.file`).
sox -n -r 16000 -c 1 "$tmp/s.wav" trim 0 3 && sox "$tmp/s.wav" -C 0 "$out/v1-silence_3s.ogg"
add v1-silence_3s.ogg bed "" "" sox "$out/v1-silence_3s.ogg"
sox -n -r 16000 -c 1 "$tmp/p.wav" synth 5 pinknoise vol 0.1 && sox "$tmp/p.wav" -C 0 "$out/v1-pink_noise_5s.ogg"
add v1-pink_noise_5s.ogg bed "" "" sox "$out/v1-pink_noise_5s.ogg"
# A busy room: brown noise with a slow tremolo, as crowd murmur is to a phone.
sox -n -r 16000 -c 1 "$tmp/b.wav" synth 5 brownnoise tremolo 0.7 60 vol 0.15 && sox "$tmp/b.wav" -C 0 "$out/v1-room_noise_5s.ogg"
add v1-room_noise_5s.ogg bed "" "" sox "$out/v1-room_noise_5s.ogg"

printf '%s]\n' "$manifest" | python3 -c 'import json,sys;print(json.dumps(json.load(sys.stdin),indent=2))' >"$out/manifest.json"
echo "wrote $(ls "$out" | wc -l) files to $out"
