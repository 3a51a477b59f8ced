-- The audit log's actions get the fixed names `sfs audit` shows and filters
-- on (src/db/audit.rs declares them): a login says its method in its name,
-- and every name is one hyphenated word. Indexes serve `sfs audit`'s
-- filters by account, action and time, newest first.
UPDATE audit_log SET action = 'login-code' WHERE action = 'login' AND detail IN ('e-mailed code', 'new account');
UPDATE audit_log SET action = 'login-app' WHERE action = 'login' AND detail = 'authenticator app code';
UPDATE audit_log SET action = 'login-key' WHERE action = 'login';
UPDATE audit_log SET action = 'upload-abandoned' WHERE action = 'upload abandoned';
UPDATE audit_log SET action = 'trust-key' WHERE action = 'trust key';
UPDATE audit_log SET action = 'remove-key' WHERE action = 'remove key';
UPDATE audit_log SET action = 'account-disabled' WHERE action = 'account disabled';
UPDATE audit_log SET action = 'account-enabled' WHERE action = 'account enabled';
UPDATE audit_log SET action = 'account-deleted' WHERE action = 'account deleted';
CREATE INDEX audit_log_account ON audit_log (account_id, id);
CREATE INDEX audit_log_email ON audit_log (email, id);
CREATE INDEX audit_log_action ON audit_log (action, id);
CREATE INDEX audit_log_at ON audit_log (at);
