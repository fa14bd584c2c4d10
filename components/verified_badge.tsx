// The badge public pages put beside a provider whose organization the system administrator
// verified (lib/orgs.ts setVerified()) or whose entry curators verified (lib/providers.ts).

/** "Verified" with who vouches for it, for screen readers and on hover; nothing when null. */
export function VerifiedBadge({ organization }: { organization: string | null | undefined }) {
  if (!organization) return null;
  return (
    <span
      class="verified-badge"
      data-testid="verified-badge"
      title={`Verified: ${organization}`}
    >
      <span aria-hidden="true">✓</span> Verified<span class="visually-hidden">: {organization}</span>
    </span>
  );
}
