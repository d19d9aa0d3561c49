-- Create "accounts" table
CREATE TABLE `accounts` (`id` uuid NOT NULL, `email` varchar(255) NOT NULL, `display_name` varchar(255) NULL, `joined_at` timestamp NULL, PRIMARY KEY (`id`), UNIQUE INDEX `email` (`email`)) CHARSET utf8mb4 COLLATE utf8mb4_bin;
-- Create "sessions" table
CREATE TABLE `sessions` (`id` bigint NOT NULL AUTO_INCREMENT, `title` varchar(255) NOT NULL, `minutes` bigint NOT NULL, PRIMARY KEY (`id`)) CHARSET utf8mb4 COLLATE utf8mb4_bin;
-- Create "qsessions_session" table
CREATE TABLE `qsessions_session` (`session_key` varchar(64) NOT NULL, `session_data` mediumblob NOT NULL, `expire_date` datetime(6) NOT NULL, `user_agent` varchar(300) NULL, `ip` varchar(45) NULL, `created_at` datetime(6) NOT NULL, `updated_at` datetime(6) NOT NULL, `last_activity` datetime(6) NOT NULL, `user_id` uuid NULL, PRIMARY KEY (`session_key`), INDEX `qsessions_session_expire_date` (`expire_date`), INDEX `qsessions_session_user_id_expire_date` (`user_id`, `expire_date`), CONSTRAINT `qsessions_session_accounts_sessions` FOREIGN KEY (`user_id`) REFERENCES `accounts` (`id`) ON UPDATE RESTRICT ON DELETE CASCADE) CHARSET utf8mb4 COLLATE utf8mb4_bin;
