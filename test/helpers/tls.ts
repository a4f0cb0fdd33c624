import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** The OpenSSL CLI used to make test certificates. */
export const OPENSSL = '/usr/bin/openssl';

/** Whether test certificates can be made here; wss tests are skipped (visibly) otherwise. */
export const HAVE_OPENSSL = existsSync(OPENSSL);

/** A PEM certificate and its private key. */
export interface TestCertificate {
  cert: string;
  key: string;
}

/**
 * A fresh self-signed P-256 certificate for `localhost` and `127.0.0.1`, valid for one day.
 * The certificate is its own CA: a client trusts it with `ca: cert`.
 */
export function makeSelfSignedCertificate(): TestCertificate {
  const dir = mkdtempSync(join(tmpdir(), 'parley-tls-'));
  try {
    const keyFile = join(dir, 'key.pem');
    const certFile = join(dir, 'cert.pem');
    execFileSync(
      OPENSSL,
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:prime256v1',
        '-nodes',
        '-keyout',
        keyFile,
        '-out',
        certFile,
        '-days',
        '1',
        '-subj',
        '/CN=localhost',
        '-addext',
        'subjectAltName=IP:127.0.0.1,DNS:localhost',
      ],
      { stdio: 'pipe', timeout: 30_000 },
    );
    return { cert: readFileSync(certFile, 'utf8'), key: readFileSync(keyFile, 'utf8') };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
