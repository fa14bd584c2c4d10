// A clip's waveform as inline SVG: one mirrored bar per peak (lib/audio_peaks.ts), drawn on the
// server so it shows without JavaScript and costs the page no script.

/** An SVG peak envelope of `peaks` (each 0..1), labelled for screen readers with the clip's name. */
export function Waveform({ name, peaks }: { name: string; peaks: number[] }) {
  const h = 32;
  const mid = h / 2;
  // One bar per peak, at least a hairline so silence still reads as a line.
  const d = peaks.map((p, i) => {
    const half = Math.max(0.5, p * mid);
    return `M${i + 0.5} ${(mid - half).toFixed(1)}V${(mid + half).toFixed(1)}`;
  }).join("");
  return (
    <svg
      class="c-waveform"
      viewBox={`0 0 ${peaks.length} ${h}`}
      preserveAspectRatio="none"
      width="160"
      height={h}
      role="img"
      aria-label={`Waveform of ${name}`}
      data-peaks={peaks.length}
    >
      <path d={d} stroke="currentColor" stroke-width="0.7" fill="none" />
    </svg>
  );
}
