// /console/projects/:id/audio: a project's caller audio (upload by drag and drop, play, rename,
// delete, which eval sets use each clip) and the shipped library. Loaded from the API as the
// caller (./_api.ts); changes go through islands calling the same API.
import { Hono } from "hono";
import { Empty, PageHead, Section, Table, when } from "../../components/console/ui.tsx";
import { Waveform } from "../../components/console/waveform.tsx";
import AudioUpload from "../../islands/audio_upload.tsx";
import type { AppDeps, AppEnv } from "../../lib/context.ts";
import { Island } from "../../lib/islands/marker.tsx";
import type { ApiGet } from "./_api.ts";
import { Action, consolePage, Form, guarded } from "./_page.tsx";

interface Clip {
  name: string;
  sha256: string;
  durationMs: number;
  sampleRate: number;
  channels: number;
  bytes: number;
  format: string;
  createdAt: string;
  usedBy: { id: number; name: string }[];
  /** The waveform's envelope; absent when the clip could not be decoded for it. */
  peaks?: number[];
}
interface LibraryClip {
  name: string;
  kind: string;
  text: string;
  voice: string;
  engine: string;
  durationMs: number;
}

const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
const kb = (n: number) => `${Math.max(1, Math.round(n / 1024))} KB`;

/** The console's audio page. */
export function consoleAudioRoutes(deps: AppDeps, get: ApiGet) {
  const app = new Hono<AppEnv>();
  app.get(
    "/console/projects/:id/audio",
    guarded(deps, {}, async (c) => {
      const id = Number(c.req.param("id"));
      if (!Number.isSafeInteger(id) || id <= 0) return c.notFound();
      const [project, { clips }, library] = await Promise.all([
        get<{ id: number; name: string }>(c, `/api/v1/projects/${id}`),
        get<{ clips: Clip[] }>(c, `/api/v1/projects/${id}/audio?peaks=true`),
        get<{ version: string; clips: LibraryClip[] }>(c, "/api/v1/audio/library"),
      ]);
      return consolePage(c, deps, {
        title: `Audio · ${project.name}`,
        body: (
          <>
            <PageHead
              title="Caller audio"
              crumbs={[{ href: "/console/projects", label: "Projects" }, {
                href: `/console/workflows?projectId=${id}`,
                label: project.name,
              }]}
              lead="Clips your eval sets can speak with `speak: { file: <name> }`. An eval agent is given exactly these bytes, checked by their SHA-256."
            />
            <Section title="Upload">
              <Island
                name="audio_upload"
                component={AudioUpload}
                props={{
                  projectId: id,
                  maxBytes: deps.config.VOX_AUDIO_MAX_BYTES,
                  maxSeconds: deps.config.VOX_AUDIO_MAX_SECONDS,
                }}
              />
            </Section>
            {clips.length === 0
              ? (
                <Empty title="No clips yet">
                  Upload your callers' recordings above, or use the library below.
                </Empty>
              )
              : (
                <Table
                  caption="The project's clips"
                  head={["Clip", "Listen", "Length", "Used by", "Actions"]}
                >
                  {clips.map((clip) => {
                    const href = `/api/v1/projects/${id}/audio/${encodeURIComponent(clip.name)}`;
                    return (
                      <tr key={clip.name} data-clip={clip.name}>
                        <td>
                          <code>{clip.name}</code>
                          <div class="muted small">
                            {clip.format}, {clip.sampleRate} Hz,{" "}
                            {clip.channels === 1 ? "mono" : `${clip.channels} ch`}, {kb(clip.bytes)} ·{" "}
                            {when(clip.createdAt)}
                          </div>
                          <div class="muted small" title={clip.sha256}>
                            sha256 {clip.sha256.slice(0, 12)}…
                          </div>
                        </td>
                        <td>
                          {clip.peaks && <Waveform name={clip.name} peaks={clip.peaks} />}
                          <audio controls preload="none" src={href} aria-label={`Play ${clip.name}`} />
                        </td>
                        <td>{seconds(clip.durationMs)}</td>
                        <td>
                          {clip.usedBy.length === 0
                            ? <span class="muted">no eval set</span>
                            : (
                              <ul class="c-used-by">
                                {clip.usedBy.map((e) => (
                                  <li key={e.id}>
                                    <a href={`/console/eval-sets/${e.id}`}>{e.name}</a>
                                  </li>
                                ))}
                              </ul>
                            )}
                        </td>
                        <td class="c-row-actions">
                          <a class="button small" href={href} download={clip.name}>Download</a>
                          {clip.usedBy.length === 0 && (
                            <details class="c-inline-edit">
                              <summary class="button small">Rename</summary>
                              <Form
                                {...{
                                  id: `rename-${clip.name}`,
                                  method: "PATCH",
                                  action: href,
                                  submit: "Save",
                                  inline: true,
                                  fields: [{
                                    name: "name",
                                    label: "New name",
                                    value: clip.name,
                                    required: true,
                                  }],
                                  then: { reload: true },
                                }}
                              />
                            </details>
                          )}
                          {clip.usedBy.length === 0 && (
                            <Action
                              {...{
                                label: "Delete",
                                method: "DELETE",
                                action: href,
                                danger: true,
                                confirm: `Deletes the clip “${clip.name}”. This cannot be undone.`,
                              }}
                            />
                          )}
                          {clip.usedBy.length > 0 && (
                            <span class="muted small">
                              In use: change those eval sets to rename or delete it.
                            </span>
                          )}
                        </td>
                      </tr>
                    );
                  })}
                </Table>
              )}
            <Section title={`Library (${library.version})`}>
              <p class="muted">
                Caller utterances and noise beds shipped with Vox, the same bytes on every server; name them
                in any eval set.
              </p>
              <Table caption="The shipped library" head={["Clip", "Listen", "Length", "Says"]}>
                {library.clips.map((l) => (
                  <tr key={l.name}>
                    <td>
                      <code>{l.name}</code>
                      <div class="muted small">{l.kind === "bed" ? "bed" : `${l.engine} ${l.voice}`}</div>
                    </td>
                    <td>
                      <audio
                        controls
                        preload="none"
                        src={`/api/v1/audio/library/${l.name}`}
                        aria-label={`Play ${l.name}`}
                      />
                    </td>
                    <td>{seconds(l.durationMs)}</td>
                    <td>{l.text || <span class="muted">—</span>}</td>
                  </tr>
                ))}
              </Table>
            </Section>
          </>
        ),
      });
    }),
  );
  return app;
}
