-- atlas:pos accounts[type=table]
-- atlas:pos qsessions_event[type=table]
-- atlas:pos qsessions_session[type=table]
-- atlas:pos sessions[type=table]

-- Create "accounts" table
CREATE TABLE `accounts` (
  `id` uuid NOT NULL,
  `email` varchar(255) NOT NULL,
  `display_name` varchar(255) NULL,
  `joined_at` timestamp NULL,
  PRIMARY KEY (`id`),
  UNIQUE INDEX `email` (`email`)
) CHARSET utf8mb4 COLLATE utf8mb4_bin;
-- Create "sessions" table
CREATE TABLE `sessions` (
  `id` bigint NOT NULL AUTO_INCREMENT,
  `title` varchar(255) NOT NULL,
  `minutes` bigint NOT NULL,
  PRIMARY KEY (`id`)
) CHARSET utf8mb4 COLLATE utf8mb4_bin;
-- Create "qsessions_event" table
CREATE TABLE `qsessions_event` (
  `id` bigint NOT NULL AUTO_INCREMENT,
  `kind` varchar(16) NOT NULL,
  `cause` varchar(16) NULL,
  `session_id` varchar(16) NOT NULL,
  `asked_by` varchar(16) NULL,
  `ip` varchar(45) NULL,
  `user_agent` varchar(300) NULL,
  `device` varchar(100) NULL,
  `location` varchar(200) NULL,
  `country` varchar(2) NULL,
  `new_device` bool NOT NULL DEFAULT false,
  `new_location` bool NOT NULL DEFAULT false,
  `created_at` datetime(6) NOT NULL,
  `user_id` uuid NOT NULL,
  PRIMARY KEY (`id`),
  INDEX `qsessions_event_user_id_created_at` (`user_id`, `created_at`),
  INDEX `qsessions_event_created_at` (`created_at`),
  CONSTRAINT `qsessions_event_accounts_session_events` FOREIGN KEY (`user_id`) REFERENCES `accounts` (`id`) ON DELETE CASCADE
) CHARSET utf8mb4 COLLATE utf8mb4_bin;
-- Create "qsessions_session" table
CREATE TABLE `qsessions_session` (
  `session_key` varchar(64) NOT NULL,
  `session_data` mediumblob NOT NULL,
  `expire_date` datetime(6) NOT NULL,
  `user_agent` varchar(300) NULL,
  `ip` varchar(45) NULL,
  `created_at` datetime(6) NOT NULL,
  `updated_at` datetime(6) NOT NULL,
  `last_activity` datetime(6) NOT NULL,
  `dbsc_key` varchar(1024) NULL,
  `dbsc_secret` varbinary(32) NULL,
  `user_id` uuid NULL,
  PRIMARY KEY (`session_key`),
  INDEX `qsessions_session_user_id_expire_date` (`user_id`, `expire_date`),
  INDEX `qsessions_session_expire_date` (`expire_date`),
  CONSTRAINT `qsessions_session_accounts_sessions` FOREIGN KEY (`user_id`) REFERENCES `accounts` (`id`) ON DELETE CASCADE
) CHARSET utf8mb4 COLLATE utf8mb4_bin;
