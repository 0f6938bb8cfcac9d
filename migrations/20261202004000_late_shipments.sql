-- Seed 3 sends only instructions shipped today (「出荷日がアクション実行日当日」). One shipped on an
-- earlier day and still 印刷待ち (after the day's last run, or its retry landed the next day) is
-- never sent by the automatic run: shipment-feedback raises one attention entry for it
-- (late_noticed_at) and an operator resends it (console or `ctl resend-shipment`), recorded with
-- who asked (resend_requested_by).
ALTER TABLE shipping_instructions
    ADD COLUMN late_noticed_at timestamptz,
    ADD COLUMN resend_requested_by text;
