-- The origin of the page that opened the Connect UI: the popup's result is posted to it only.
ALTER TABLE connect_sessions ADD COLUMN opener_origin text;
