-- atlas:pos qsessions_session[type=table]
-- atlas:pos qsessions_event[type=table]
-- atlas:pos users[type=table]

-- Create "qsessions_session" table
CREATE TABLE `qsessions_session` (
  `session_key` text NOT NULL,
  `session_data` blob NOT NULL,
  `expire_date` datetime NOT NULL,
  `user_agent` text NULL,
  `ip` text NULL,
  `created_at` datetime NOT NULL,
  `updated_at` datetime NOT NULL,
  `last_activity` datetime NOT NULL,
  `dbsc_key` text NULL,
  `dbsc_secret` blob NULL,
  `user_id` integer NULL,
  PRIMARY KEY (`session_key`),
  CONSTRAINT `qsessions_session_users_sessions` FOREIGN KEY (`user_id`) REFERENCES `users` (`id`) ON DELETE CASCADE
);
-- Create index "qsessions_session_user_id_expire_date" to table: "qsessions_session"
CREATE INDEX `qsessions_session_user_id_expire_date` ON `qsessions_session` (`user_id`, `expire_date`);
-- Create index "qsessions_session_expire_date" to table: "qsessions_session"
CREATE INDEX `qsessions_session_expire_date` ON `qsessions_session` (`expire_date`);
-- Create "qsessions_event" table
CREATE TABLE `qsessions_event` (
  `id` integer NOT NULL PRIMARY KEY AUTOINCREMENT,
  `kind` text NOT NULL,
  `cause` text NULL,
  `session_id` text NOT NULL,
  `asked_by` text NULL,
  `ip` text NULL,
  `user_agent` text NULL,
  `device` text NULL,
  `location` text NULL,
  `country` text NULL,
  `new_device` bool NOT NULL DEFAULT (false),
  `new_location` bool NOT NULL DEFAULT (false),
  `created_at` datetime NOT NULL,
  `user_id` integer NOT NULL,
  CONSTRAINT `qsessions_event_users_session_events` FOREIGN KEY (`user_id`) REFERENCES `users` (`id`) ON DELETE CASCADE
);
-- Create index "qsessions_event_user_id_created_at" to table: "qsessions_event"
CREATE INDEX `qsessions_event_user_id_created_at` ON `qsessions_event` (`user_id`, `created_at`);
-- Create index "qsessions_event_created_at" to table: "qsessions_event"
CREATE INDEX `qsessions_event_created_at` ON `qsessions_event` (`created_at`);
-- Create "users" table
CREATE TABLE `users` (
  `id` integer NOT NULL PRIMARY KEY AUTOINCREMENT,
  `username` text NOT NULL,
  `password_hash` blob NULL,
  `is_admin` bool NOT NULL DEFAULT (false)
);
-- Create index "users_username_key" to table: "users"
CREATE UNIQUE INDEX `users_username_key` ON `users` (`username`);
