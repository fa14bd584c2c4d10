/// <reference lib="dom" />
// Uploading caller audio to a project (POST /api/v1/projects/:id/audio, multipart): drop files
// on the zone or pick them; each is sent in turn under its own name (or the name typed for a
// single file), and the API's refusal (not audio, corrupt, too long, too large, name taken) is
// shown beside the file it is about. The page reloads when something was stored.
import { useState } from "preact/hooks";

export interface AudioUploadProps {
  [key: string]: unknown;
  projectId: number;
  maxBytes: number;
  maxSeconds: number;
}

type Line = { file: string; ok: boolean; message: string };

export default function AudioUpload(props: AudioUploadProps) {
  const [over, setOver] = useState(false);
  const [busy, setBusy] = useState(false);
  const [name, setName] = useState("");
  const [lines, setLines] = useState<Line[]>([]);

  const send = async (files: File[]) => {
    if (!files.length || busy) return;
    setBusy(true);
    const out: Line[] = [];
    for (const file of files) {
      const form = new FormData();
      form.append("file", file);
      if (files.length === 1 && name.trim()) form.append("name", name.trim());
      try {
        const res = await fetch(`/api/v1/projects/${props.projectId}/audio`, {
          method: "POST",
          body: form,
          credentials: "same-origin",
        });
        const data = await res.json().catch(() => null);
        out.push(
          res.ok
            ? {
              file: file.name,
              ok: true,
              message: `stored as ${data.name} (${(data.durationMs / 1000).toFixed(1)} s)`,
            }
            : { file: file.name, ok: false, message: data?.error?.message ?? `refused (${res.status})` },
        );
      } catch {
        out.push({ file: file.name, ok: false, message: "the server could not be reached" });
      }
      setLines([...out]);
    }
    setBusy(false);
    if (out.some((l) => l.ok) && out.every((l) => l.ok)) location.reload();
  };

  return (
    <div class="c-audio-upload">
      <label
        class={`c-drop${over ? " c-drop-over" : ""}`}
        onDragOver={(e) => {
          e.preventDefault();
          setOver(true);
        }}
        onDragLeave={() => setOver(false)}
        onDrop={(e) => {
          e.preventDefault();
          setOver(false);
          send([...(e.dataTransfer?.files ?? [])]);
        }}
      >
        <span>
          {busy ? "Uploading…" : "Drop wav, mp3, ogg or flac files here, or choose them"}
        </span>
        <span class="muted small">
          Up to {Math.round(props.maxBytes / 1024 / 1024)} MB and {props.maxSeconds}{" "}
          s each; checked by decoding.
        </span>
        <input
          type="file"
          accept="audio/wav,audio/x-wav,audio/mpeg,audio/ogg,audio/flac,.wav,.mp3,.ogg,.oga,.flac"
          multiple
          disabled={busy}
          onChange={(e) => send([...((e.target as HTMLInputElement).files ?? [])])}
        />
      </label>
      <p>
        <label>
          Name (optional, one file at a time){" "}
          <input
            type="text"
            value={name}
            placeholder="greeting.wav"
            pattern="[A-Za-z0-9_\-][A-Za-z0-9._\-]*"
            onInput={(e) => setName((e.target as HTMLInputElement).value)}
          />
        </label>
      </p>
      {lines.length > 0 && (
        <ul class="c-upload-results" aria-live="polite">
          {lines.map((l, i) => (
            <li key={i} class={l.ok ? "" : "c-action-error"} role={l.ok ? undefined : "alert"}>
              {l.file}: {l.message}
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}
