-- Add column "dbsc_key" to table: "qsessions_session"
ALTER TABLE `qsessions_session` ADD COLUMN `dbsc_key` text NULL;
-- Add column "dbsc_secret" to table: "qsessions_session"
ALTER TABLE `qsessions_session` ADD COLUMN `dbsc_secret` blob NULL;
-- Create "qsessions_event" table
CREATE TABLE `qsessions_event` (`id` integer NOT NULL PRIMARY KEY AUTOINCREMENT, `kind` text NOT NULL, `cause` text NULL, `session_id` text NOT NULL, `asked_by` text NULL, `ip` text NULL, `user_agent` text NULL, `device` text NULL, `location` text NULL, `country` text NULL, `new_device` bool NOT NULL DEFAULT (false), `new_location` bool NOT NULL DEFAULT (false), `created_at` datetime NOT NULL, `user_id` integer NOT NULL, CONSTRAINT `qsessions_event_users_session_events` FOREIGN KEY (`user_id`) REFERENCES `users` (`id`) ON DELETE CASCADE);
-- Create index "qsessions_event_user_id_created_at" to table: "qsessions_event"
CREATE INDEX `qsessions_event_user_id_created_at` ON `qsessions_event` (`user_id`, `created_at`);
-- Create index "qsessions_event_created_at" to table: "qsessions_event"
CREATE INDEX `qsessions_event_created_at` ON `qsessions_event` (`created_at`);
