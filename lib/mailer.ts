// @ts-types="@types/nodemailer"
import nodemailer from "nodemailer";
import type { Config } from "./config.ts";
import type { Logger } from "./log.ts";

export interface MailMessage {
  to: string;
  subject: string;
  text: string;
}

/** Sends mail. SMTP when SMTP_URL is set; otherwise the message is written to the server log. */
export interface Mailer {
  readonly kind: "smtp" | "log" | "memory";
  send(message: MailMessage): Promise<void>;
}

/** Thrown when the mail server refused or could not be reached. */
export class MailError extends Error {
  override name = "MailError";
}

/** The mailer the configuration asks for. */
export function createMailer(config: Config, log: Logger): Mailer {
  return config.SMTP_URL ? smtpMailer(config.SMTP_URL, config.MAIL_FROM) : logMailer(log);
}

/** SMTP through nodemailer; smtps:// is TLS from the start, smtp:// upgrades with STARTTLS when offered. */
export function smtpMailer(url: string, from: string): Mailer {
  const transport = nodemailer.createTransport(url);
  return {
    kind: "smtp",
    async send(m) {
      try {
        await transport.sendMail({ from, to: m.to, subject: m.subject, text: m.text });
      } catch (err) {
        throw new MailError(`Could not send mail: ${(err as Error).message}`, { cause: err });
      }
    },
  };
}

/**
 * Without SMTP the message (including any link in it) goes to the server log at warn level,
 * so whoever runs the server can pass it on; the line says that it holds a secret. This is the
 * only place an activation link reaches a log (docs/security.md).
 */
export function logMailer(log: Logger): Mailer {
  return {
    kind: "log",
    send(m) {
      log.warn(
        "SECRET: mail not sent (SMTP_URL is not set); its content follows and may hold a " +
          "single-use link that activates an account: pass it on to the recipient only",
        {
          mailTo: m.to,
          subject: m.subject,
          body: m.text,
        },
      );
      return Promise.resolve();
    },
  };
}

/** Keeps messages in memory (tests, and tools that show the link themselves). */
export function memoryMailer(): Mailer & { sent: MailMessage[] } {
  const sent: MailMessage[] = [];
  return {
    kind: "memory",
    sent,
    send(m) {
      sent.push(m);
      return Promise.resolve();
    },
  };
}
