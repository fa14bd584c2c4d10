// Billing pages (issue 12): /console/billing (a solo user's plan, payment methods, history,
// upgrade/cancel, fund returns), /console/organization/billing (an organization's seats and
// billing, for its admins) and /admin/console/fund-returns (the admin's queue). Like every
// console page they load from the API in-process as the caller and act through islands.
import { type Context, Hono } from "hono";
import type { ComponentChildren } from "preact";
import { Badge, Empty, ErrorNote, PageHead, Section, Table, when } from "../../components/console/ui.tsx";
import type { PaymentView, SubscriptionView } from "../../lib/billing/accounts.ts";
import type { FundReturnView } from "../../lib/billing/fund_returns.ts";
import type { PaymentMethodInfo } from "../../lib/billing/provider.ts";
import type { AppDeps, AppEnv } from "../../lib/context.ts";
import { ApiFailure, type ApiGet } from "./_api.ts";
import { Action, consolePage, Form, guarded } from "./_page.tsx";

interface Quote {
  seats: number;
  unitCents: number;
  discountPercent: number;
  totalCents: number;
  currency: string;
}
// What the billing API answers (routes/api/billing.ts) is lib/billing's own shapes.
type Subscription = SubscriptionView;
type Method = PaymentMethodInfo;
type Payment = PaymentView;
type FundReturn = FundReturnView;
interface Account {
  owner: { kind: "user" | "organization"; id: number; name: string };
  role: string | null;
  premiumFromOrganization: boolean;
  paidSeats: number | null;
  subscriptions: Subscription[];
  quote: Quote;
}

/** "30.60 USD (3060 cents)". */
export function money(cents: number, currency = "usd"): string {
  return `${(cents / 100).toFixed(2)} ${currency.toUpperCase()} (${cents} cents)`;
}

const OFF_TEXT = "Billing is not set up on this server. Whoever runs it can turn it on with Stripe keys " +
  "(see the README, “Turn billing on”); everything else works without it.";

/** Loads a page's data, or null when the API says billing is off. */
async function loadOrOff<T>(load: () => Promise<T>): Promise<T | null> {
  try {
    return await load();
  } catch (err) {
    if (err instanceof ApiFailure && err.code === "billing_disabled") return null;
    throw err;
  }
}

/** The parts both owners' pages share: payment methods, history, fund returns. */
function OwnerSections(
  { base, methods, payments, fundReturns }: {
    base: string;
    methods: Method[];
    payments: Payment[];
    fundReturns: FundReturn[];
  },
) {
  const refundable = payments.filter((p) => p.refundableCents > 0);
  return (
    <>
      <Section title="Payment methods">
        {methods.length === 0
          ? <Empty title="No saved payment method">Add a card; it is kept by Stripe, not by Vox.</Empty>
          : (
            <Table caption="Payment methods" head={["Card", "Expires", "", "Actions"]}>
              {methods.map((m) => (
                <tr key={m.id} data-method={m.id}>
                  <td>{m.brand ?? "card"} ···· {m.last4 ?? "????"}</td>
                  <td>
                    {m.expMonth && m.expYear ? `${String(m.expMonth).padStart(2, "0")}/${m.expYear}` : "—"}
                  </td>
                  <td>{m.isDefault && <Badge value="default" />}</td>
                  <td class="c-row-actions">
                    {!m.isDefault && (
                      <Action
                        {...{
                          label: "Make default",
                          method: "POST",
                          action: `${base}/payment-methods/default`,
                          body: { paymentMethodId: m.id },
                        }}
                      />
                    )}
                    <Action
                      {...{
                        label: "Remove",
                        method: "POST",
                        action: `${base}/payment-methods/remove`,
                        body: { paymentMethodId: m.id },
                        danger: true,
                        confirm: `Removes the card ending ${m.last4 ?? "????"} from this account.`,
                      }}
                    />
                  </td>
                </tr>
              ))}
            </Table>
          )}
        <p>
          <Action
            {...{
              label: "Add a card",
              method: "POST",
              action: `${base}/payment-methods/setup`,
              redirect: "{url}",
            }}
          />
        </p>
      </Section>
      <Section title="Payment history">
        {payments.length === 0
          ? <Empty title="No payments yet" />
          : (
            <Table caption="Payment history" head={["Date", "What", "Amount", "Returned", "Status"]}>
              {payments.map((p) => (
                <tr key={p.id} data-payment={p.id}>
                  <td>{when(p.createdAt)}</td>
                  <td>{p.kind === "refund" ? `Refund (${p.description})` : p.description}</td>
                  <td>{money(p.amountCents, p.currency)}</td>
                  <td>{p.refundedCents ? money(p.refundedCents, p.currency) : "—"}</td>
                  <td>
                    <Badge value={p.status} />
                  </td>
                </tr>
              ))}
            </Table>
          )}
        <p>
          <Action
            {...{
              label: "Invoices and receipts",
              method: "POST",
              action: `${base}/portal`,
              redirect: "{url}",
            }}
          />{" "}
          <span class="muted small">opens Stripe's customer portal</span>
        </p>
      </Section>
      <Section title="Fund returns">
        {fundReturns.length > 0 && (
          <Table
            caption="Fund return requests"
            head={["Asked", "Payment", "Amount", "Reason", "Status", "Answer"]}
          >
            {fundReturns.map((f) => (
              <tr key={f.id} data-fund-return={f.id}>
                <td>{when(f.createdAt)}</td>
                <td>#{f.paymentId}</td>
                <td>{money(f.amountCents, f.currency)}</td>
                <td>{f.reason}</td>
                <td>
                  <Badge value={f.status} />
                </td>
                <td>{f.reviewNote ?? (f.status === "pending" ? "waiting for review" : "—")}</td>
              </tr>
            ))}
          </Table>
        )}
        {refundable.length === 0
          ? <p class="muted">No payment has money that could still be returned.</p>
          : (
            <Form
              {...{
                id: "fund-return",
                method: "POST",
                action: `${base}/fund-returns`,
                submit: "Request a fund return",
                fields: [
                  {
                    name: "paymentId",
                    label: "Payment",
                    type: "select",
                    number: true,
                    value: String(refundable[0].id),
                    options: refundable.map((p) => ({
                      value: String(p.id),
                      label: `#${p.id}, ${when(p.createdAt)}: up to ${money(p.refundableCents, p.currency)}`,
                    })),
                  },
                  {
                    name: "amountCents",
                    label: "Amount (cents)",
                    type: "number",
                    number: true,
                    value: refundable[0].refundableCents,
                    required: true,
                  },
                  { name: "reason", label: "Reason", type: "textarea", rows: 3, required: true },
                ],
                note: "The administrator reviews each request; you get an e-mail with the answer.",
                then: { reload: true },
              }}
            />
          )}
      </Section>
    </>
  );
}

/** The /console/billing and /console/organization/billing pages, and the admin's queue. */
export function billingConsoleRoutes(deps: AppDeps, get: ApiGet) {
  const app = new Hono<AppEnv>();
  const page = (h: Parameters<typeof guarded>[2]) => guarded(deps, {}, h);
  const adminPage = (h: Parameters<typeof guarded>[2]) => guarded(deps, { admin: true }, h);

  const off = (c: Context<AppEnv>, title: string, admin = false) =>
    consolePage(c, deps, {
      title,
      admin,
      body: (
        <>
          <PageHead title={title} />
          <div class="c-empty" role="status" data-billing="off">
            <p class="c-empty-title">Billing is not set up</p>
            <p class="muted">{OFF_TEXT}</p>
          </div>
        </>
      ),
    });

  const checkoutNote = (c: Context<AppEnv>): ComponentChildren => {
    const q = c.req.query();
    if (q.checkout === "done") {
      return (
        <p class="notice" role="status">
          Thank you: the payment went through. The plan below changes as soon as Stripe confirms it (usually
          within seconds; reload if it has not yet).
        </p>
      );
    }
    if (q.checkout === "cancelled") {
      return <p class="notice" role="status">Checkout was cancelled; nothing was charged.</p>;
    }
    if (q.card === "saved") return <p class="notice" role="status">The card was saved.</p>;
    return null;
  };

  app.get(
    "/console/billing",
    page(async (c) => {
      const base = "/api/v1/billing";
      const data = await loadOrOff(() =>
        Promise.all([
          get<Account>(c, base),
          get<{ paymentMethods: Method[] }>(c, `${base}/payment-methods`),
          get<{ payments: Payment[] }>(c, `${base}/payments`),
          get<{ fundReturns: FundReturn[] }>(c, `${base}/fund-returns`),
        ])
      );
      if (!data) return off(c, "Billing");
      const [account, { paymentMethods }, { payments }, { fundReturns }] = data;
      const live = account.subscriptions.find((s) => s.active);
      const hadPremium = account.subscriptions.length > 0;
      const role = account.role ?? "basic";
      return consolePage(c, deps, {
        title: "Billing",
        body: (
          <>
            <PageHead
              title="Billing"
              lead={`Premium costs ${money(account.quote.unitCents, account.quote.currency)} a month.`}
            />
            {checkoutNote(c)}
            <Section title="Plan">
              <p data-plan={role}>
                Your plan:{" "}
                <strong>{role === "premium" ? "Premium" : role === "basic" ? "Basic" : role}</strong>
                {live && (
                  <span class="muted">
                    {" "}
                    {live.cancelAtPeriodEnd || live.endsAt
                      ? `— ends ${when(live.endsAt ?? live.currentPeriodEnd)}`
                      : `— renews ${when(live.currentPeriodEnd)}`}
                  </span>
                )}
              </p>
              {account.premiumFromOrganization && (
                <p class="muted" data-premium-from="organization">
                  Your Premium powers come from a paid seat of your organization, for as long as the seat is
                  paid.
                </p>
              )}
              {role === "basic" && (
                <>
                  {hadPremium && (
                    <p class="notice" data-basic-notice>
                      Your Premium subscription has ended. Your private workflows and eval sets stay private
                      and you can still read and run them, but you cannot make new private items until you
                      upgrade again.
                    </p>
                  )}
                  <p>
                    Premium lets you make workflows and eval sets private and raises your limits to 20
                    projects of 20 workflows.
                  </p>
                  <Action
                    {...{
                      label: "Upgrade to Premium",
                      method: "POST",
                      action: `${base}/checkout`,
                      redirect: "{url}",
                    }}
                  />
                </>
              )}
              {live && !live.cancelAtPeriodEnd && !live.endsAt && (
                <Action
                  {...{
                    label: "Cancel Premium",
                    method: "POST",
                    action: `${base}/cancel`,
                    body: { subscriptionId: live.id },
                    danger: true,
                    confirm: `Premium stays until ${
                      when(live.currentPeriodEnd)
                    }, then you are on Basic: your private items stay private and readable, but you cannot make new private ones.`,
                  }}
                />
              )}
              {account.subscriptions.length > 0 && (
                <Table caption="Subscriptions" head={["Subscription", "Status", "Paid through", "Ends"]}>
                  {account.subscriptions.map((s) => (
                    <tr key={s.id} data-subscription={s.id}>
                      <td>Premium #{s.id}</td>
                      <td>
                        <Badge value={s.active ? "active" : s.status} />
                      </td>
                      <td>{when(s.paidThrough)}</td>
                      <td>{when(s.endsAt)}</td>
                    </tr>
                  ))}
                </Table>
              )}
            </Section>
            <OwnerSections
              base={base}
              methods={paymentMethods}
              payments={payments}
              fundReturns={fundReturns}
            />
          </>
        ),
      });
    }),
  );

  app.get(
    "/console/organization/billing",
    page(async (c) => {
      const user = c.var.user!;
      if (!user.organizationId || user.orgRole !== "admin") {
        return consolePage(c, deps, {
          title: "Organization billing",
          body: (
            <ErrorNote
              title="Organization admins only."
              message="Seats and billing belong to an organization's admins; you are not one."
            />
          ),
        });
      }
      const base = `/api/v1/organizations/${user.organizationId}/billing`;
      const data = await loadOrOff(() =>
        Promise.all([
          get<Account>(c, base),
          get<{ paymentMethods: Method[] }>(c, `${base}/payment-methods`),
          get<{ payments: Payment[] }>(c, `${base}/payments`),
          get<{ fundReturns: FundReturn[] }>(c, `${base}/fund-returns`),
        ])
      );
      if (!data) return off(c, "Seats and billing");
      const [account, { paymentMethods }, { payments }, { fundReturns }] = data;
      const wanted = Math.min(1000, Math.max(1, Number(c.req.query("seats")) || 1));
      const preview = await loadOrOff(() =>
        Promise.all([1, 3, 6, 11, wanted].map((n) => get<{ quote: Quote }>(c, `${base}/quote?seats=${n}`)))
      ).catch(() => null);
      const live = account.subscriptions.filter((s) => s.active);
      return consolePage(c, deps, {
        title: "Seats and billing",
        body: (
          <>
            <PageHead
              title="Seats and billing"
              crumbs={[{ href: "/console/organization", label: account.owner.name }]}
              lead={`${account.owner.name} has ${account.paidSeats ?? 0} paid seats. A seat costs ${
                money(account.quote.unitCents, account.quote.currency)
              } a month; the seats bought together in one purchase get the discount of their tier.`}
            />
            {checkoutNote(c)}
            <Section title="Buy seats">
              {preview && (
                <Table caption="Price per month" head={["Seats bought together", "Discount", "Per month"]}>
                  {preview.map(({ quote: q }, i) => (
                    <tr key={i} data-quote-seats={q.seats}>
                      <td>{q.seats}</td>
                      <td>{q.discountPercent} %</td>
                      <td>{money(q.totalCents, q.currency)}</td>
                    </tr>
                  ))}
                </Table>
              )}
              <form method="get" action="/console/organization/billing" class="c-inline">
                <label for="f-seats-preview">Price for</label>{" "}
                <input id="f-seats-preview" name="seats" type="number" min={1} max={1000} value={wanted} />
                {" "}
                seats <button type="submit" class="button small">Show price</button>
              </form>
              <Form
                {...{
                  id: "buy-seats",
                  method: "POST",
                  action: `${base}/checkout`,
                  submit: "Continue to payment",
                  fields: [{
                    name: "seats",
                    label: "Seats",
                    type: "number",
                    number: true,
                    value: wanted,
                    required: true,
                  }],
                  note: "You pay on Stripe's page; the seats count as soon as Stripe confirms the payment.",
                  then: { redirect: "{url}" },
                }}
              />
            </Section>
            <Section title="Seat purchases">
              {account.subscriptions.length === 0 ? <Empty title="No seats bought yet" /> : (
                <Table
                  caption="Seat purchases"
                  head={["Seats", "Status", "Paid through", "Ends", "Actions"]}
                >
                  {account.subscriptions.map((s) => (
                    <tr key={s.id} data-subscription={s.id}>
                      <td>{s.seats}</td>
                      <td>
                        <Badge value={s.active ? "active" : s.status} />
                      </td>
                      <td>{when(s.paidThrough)}</td>
                      <td>{when(s.endsAt)}</td>
                      <td>
                        {s.active && !s.cancelAtPeriodEnd && !s.endsAt && (
                          <Action
                            {...{
                              label: "Cancel",
                              method: "POST",
                              action: `${base}/cancel`,
                              body: { subscriptionId: s.id },
                              danger: true,
                              confirm: `These ${s.seats} seats lapse on ${
                                when(s.currentPeriodEnd)
                              }. Members keep their data; those beyond the paid seats lose Premium powers.`,
                            }}
                          />
                        )}
                      </td>
                    </tr>
                  ))}
                </Table>
              )}
              {live.length > 0 && <p class="muted small">{live.length} purchase(s) active.</p>}
            </Section>
            <OwnerSections
              base={base}
              methods={paymentMethods}
              payments={payments}
              fundReturns={fundReturns}
            />
          </>
        ),
      });
    }),
  );

  app.get(
    "/admin/console/fund-returns",
    adminPage(async (c) => {
      const status = ["pending", "approved", "rejected"].includes(c.req.query("status") ?? "")
        ? c.req.query("status")!
        : "";
      const data = await loadOrOff(() =>
        get<{ fundReturns: FundReturn[] }>(c, `/api/admin/fund-returns${status ? `?status=${status}` : ""}`)
      );
      if (!data) return off(c, "Fund returns", true);
      return consolePage(c, deps, {
        title: "Fund returns",
        admin: true,
        body: (
          <>
            <PageHead
              title="Fund returns"
              lead="Requests from Premium users and organization admins, oldest pending first. Approving issues the refund through Stripe at once."
            />
            <form method="get" action="/admin/console/fund-returns" class="c-inline">
              <label for="f-fr-status">Status</label>{" "}
              <select id="f-fr-status" name="status">
                <option value="">Any</option>
                {["pending", "approved", "rejected"].map((s) => (
                  <option key={s} value={s} selected={s === status}>{s}</option>
                ))}
              </select>{" "}
              <button type="submit" class="button small">Filter</button>
            </form>
            {data.fundReturns.length === 0 ? <Empty title="No fund returns" /> : (
              <Table
                caption="Fund return requests"
                head={["Asked", "Who", "Payment", "Amount", "Reason", "Status", "Review"]}
              >
                {data.fundReturns.map((f) => (
                  <tr key={f.id} data-fund-return={f.id}>
                    <td>{when(f.createdAt)}</td>
                    <td>
                      {f.requester.username}
                      <div class="muted small">
                        {f.requester.email}
                        {f.organizationId ? ` · organization ${f.organizationId}` : ""}
                      </div>
                    </td>
                    <td>
                      #{f.paymentId} of {money(f.paymentAmountCents, f.currency)}
                    </td>
                    <td>{money(f.amountCents, f.currency)}</td>
                    <td>{f.reason}</td>
                    <td>
                      <Badge value={f.status} />
                    </td>
                    <td class="c-row-actions">
                      {f.status === "pending"
                        ? (
                          <>
                            <Form
                              {...{
                                id: `approve-${f.id}`,
                                method: "POST",
                                action: `/api/admin/fund-returns/${f.id}/approve`,
                                submit: "Approve and refund",
                                inline: true,
                                fields: [{ name: "note", label: "Note (optional)", omitEmpty: true }],
                                then: { reload: true },
                              }}
                            />
                            <Form
                              {...{
                                id: `reject-${f.id}`,
                                method: "POST",
                                action: `/api/admin/fund-returns/${f.id}/reject`,
                                submit: "Reject",
                                inline: true,
                                fields: [{ name: "reason", label: "Reason", required: true }],
                                then: { reload: true },
                              }}
                            />
                          </>
                        )
                        : (f.reviewNote ?? "—")}
                    </td>
                  </tr>
                ))}
              </Table>
            )}
          </>
        ),
      });
    }),
  );

  return app;
}
