# Vox server. Build: docker build -t vox .   Run: docker run -p 8000:8000 -e DATABASE_URL=… -e VOX_SECRET_KEY=… vox
FROM debian:bookworm-slim

RUN apt-get update \
 && apt-get install -y --no-install-recommends nodejs npm ca-certificates sox libsox-fmt-all \
 && npm install --global deno@2.9.6 \
 && apt-get purge -y npm && apt-get autoremove -y && rm -rf /var/lib/apt/lists/* /root/.npm

RUN useradd --create-home --uid 10001 vox
WORKDIR /app
RUN chown vox:vox /app
USER vox

# Dependencies first, so source edits do not invalidate this layer.
COPY --chown=vox:vox deno.json deno.lock ./
RUN deno install --frozen

COPY --chown=vox:vox . .
# Type-check and cache the server, and prebuild the island bundles into .vox/build.
RUN deno cache main.ts && deno task build

ENV PORT=8000 VOX_DATA_DIR=/app/.vox
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s CMD deno eval "const r = await fetch('http://127.0.0.1:8000/healthz'); Deno.exit(r.ok ? 0 : 1)"
CMD ["deno", "task", "start"]
